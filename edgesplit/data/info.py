"""What a loaded split is: name, split, classes, shape and the normalisation it was recorded with.

Kept as a frozen, JSON-serialisable record so runs, exports and audits can say exactly which data they saw.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

from edgesplit.errors import DataError

SPLITS = ("train", "test", "attack")


@dataclass(frozen=True)
class DatasetInfo:
    """Description of one loaded split (images are in [0, 1]; `mean`/`std` are applied by the model side).

    `source` is "sklearn.load_digits" or the resolved root path; `options` holds the data-set options used.
    """

    name: str
    split: str
    num_classes: int
    channels: int
    img_size: int
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    seed: int
    source: str
    size: int
    options: dict = field(default_factory=dict, hash=False)

    def to_dict(self) -> dict:
        """Plain dict of JSON types (tuples become lists), for run records and export metadata.

        The inverse is `DatasetInfo.from_dict`.
        """
        d = asdict(self)
        for key in ("mean", "std", "classes"):
            d[key] = list(d[key])
        d["options"] = dict(self.options)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> DatasetInfo:
        """Rebuild from `to_dict()` output (or its JSON round trip); unknown keys are ignored.

        Missing keys raise DataError naming them, since the record would be incomplete.
        """
        required = [f.name for f in fields(cls) if f.name != "options"]
        missing = [k for k in required if k not in d]
        if missing:
            raise DataError(f"data set record is missing {', '.join(missing)}; "
                            "pass a dict produced by DatasetInfo.to_dict()")
        return cls(
            name=str(d["name"]), split=str(d["split"]), num_classes=int(d["num_classes"]),
            channels=int(d["channels"]), img_size=int(d["img_size"]),
            mean=tuple(float(v) for v in d["mean"]), std=tuple(float(v) for v in d["std"]),
            classes=tuple(str(c) for c in d["classes"]), seed=int(d["seed"]), source=str(d["source"]),
            size=int(d["size"]), options=dict(d.get("options") or {}),
        )
