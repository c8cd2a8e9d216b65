"""The PyTorch model a bundle was exported from, rebuilt from its manifest (spec, cut, weights).

For reference runs and white-box attacks. The checkpoint must be the one the bundle names (sha256 checked);
without one, the export's seeded random init is reproduced.
"""

from __future__ import annotations

from pathlib import Path

from edgesplit.errors import BundleError


def model_from_manifest(manifest: dict, checkpoint: str | None = None, seed: int | None = None):
    """The full model a manifest describes (architecture, classes, input, extra kwargs), on the CPU."""
    from edgesplit.models import create_model

    spec = manifest["model"].get("spec")
    if spec is None:
        raise BundleError(f"{manifest['model']['name']} is an external head (imported ONNX): no PyTorch model to "
                          f"rebuild for the torch backends or the whitebox/query-free attacks; use onnxruntime and the "
                          f"adaptive or gan attack")
    return create_model(spec["name"], num_classes=spec["num_classes"], in_chans=spec["in_chans"],
                        img_size=spec["img_size"], checkpoint=checkpoint, seed=seed, **spec.get("kwargs", {}))


def reference_split(bundle, checkpoint: str | None = None):
    """`Split(head, tail)` of the model behind `bundle`, in eval mode, on the CPU."""
    from edgesplit.export.bundle import sha256_file
    from edgesplit.models import split

    m = bundle.manifest
    wanted = m["model"].get("checkpoint_sha256")
    if wanted:
        if not checkpoint:
            raise BundleError(f"bundle was exported from checkpoint {m['model']['checkpoint']}: pass it with "
                              f"--checkpoint to rebuild the same weights")
        if sha256_file(checkpoint) != wanted:
            raise BundleError(f"checkpoint {Path(checkpoint).name} is not the one bundle {bundle.path.name} was "
                              f"exported from (sha256 differs)")
    model = model_from_manifest(m, checkpoint if wanted else None,
                                seed=m.get("export", {}).get("seed"))  # the export's seeded init
    return split(model.eval(), m["cut"]["name"])
