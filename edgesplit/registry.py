"""One registry mechanism for every named family edgesplit offers (models, data sets, decoders, defenses,
device profiles, attack presets, backends), in the spirit of timm's `create_model`.

    DECODERS = Registry("decoder", AttackError, hint="'edgesplit audit --list-decoders' lists them")
    DECODERS.add("deconv", DeconvEntry(...))
    DECODERS.get("deconv")        # the entry
    DECODERS.get("decnv")         # AttackError: unknown decoder 'decnv' (closest: deconv); 'edgesplit ...' lists them

Entries are whatever the owning package keeps (a dataclass, a builder); the registry only names them,
refuses duplicates, lists them in a stable order, and explains a wrong name with the nearest ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

from edgesplit.errors import EdgesplitError, closest

T = TypeVar("T")


class Registry(Generic[T]):
    """Named entries of one kind; `get` raises `error` with the nearest names when a name is unknown.

    `sort`: the names are listed sorted (`names()`, iteration, and the names an unknown name's error offers);
    otherwise in registration order. `entries()`, `values()` and `items()` keep registration order either way.
    """

    def __init__(self, kind: str, error: type[EdgesplitError] = EdgesplitError, hint: str = "",
                 load: Callable[[], object] | None = None, sort: bool = False) -> None:
        self.kind, self.error, self.hint, self.sort = kind, error, hint, sort
        self._entries: dict[str, T] = {}
        self._load = load  # fills the registry on first use (e.g. imports the model zoo)

    def add(self, name: str, entry: T) -> T:
        if name in self._entries:
            raise self.error(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry
        return entry

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator form of `add`."""
        return lambda entry: self.add(name, entry)

    def add_all(self, entries: Iterable[T]) -> None:
        """`add` each entry under its own `name` attribute (a table of entries)."""
        for entry in entries:
            self.add(entry.name, entry)

    def on_first_use(self, load: Callable[[], object]) -> None:
        """Give the registry its filler after it is made: a filler that imports modules registering into this
        registry (a model zoo) cannot be passed as `load=` by the module defining it without an import cycle.
        Runs once, before the next read (after any filler given before)."""
        before = self._load
        self._load = load if before is None else (lambda: (before(), load()))

    def _loaded(self) -> dict[str, T]:
        if self._load is not None:
            load, self._load = self._load, None
            load()
        return self._entries

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._loaded())

    def names(self, sort: bool | None = None) -> list[str]:
        """Registered names, in registration order, or sorted (`sort`; by default the registry's own)."""
        names = list(self._loaded())
        return sorted(names) if (self.sort if sort is None else sort) else names

    def entries(self, sort: bool = False) -> list[T]:
        return [self._loaded()[n] for n in self.names(sort=sort)]

    def __getitem__(self, name: str) -> T:
        """`registry[name]`, as for the dicts the registries replaced (an unknown name raises like `get`)."""
        return self.get(name)

    def values(self) -> list[T]:
        """The entries in registration order, as `dict.values()` gave them."""
        return self.entries()

    def items(self) -> list[tuple[str, T]]:
        return [(n, self._loaded()[n]) for n in self.names(sort=False)]

    def find(self, name: str) -> T | None:
        return self._loaded().get(name)

    def unknown(self, name: str, choices=None) -> EdgesplitError:
        """The error for a name that is not here: the nearest names, and where to look."""
        near = closest(str(name), list(choices if choices is not None else self.names()))
        return self.error(f"unknown {self.kind} {name!r} ({near})" + (f"; {self.hint}" if self.hint else ""))

    def get(self, name: str) -> T:
        entry = self._loaded().get(name)
        if entry is None:
            raise self.unknown(name)
        return entry

    def describe(self, name: str) -> str:
        """The entry's one-line description (its `description` attribute or docstring's first line)."""
        entry = self.get(name)
        text = getattr(entry, "description", None) or (getattr(entry, "__doc__", None) or "")
        return text.strip().splitlines()[0] if text.strip() else ""
