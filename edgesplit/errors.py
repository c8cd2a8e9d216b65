"""One exception type per package; each message names the problem and the fix in one line."""


class EdgesplitError(Exception):
    """Base of every error edgesplit raises on purpose (the CLI prints it in one line, exit 2)."""


class ModelError(EdgesplitError):
    """A model name, architecture option or checkpoint that cannot be used."""


class CutError(ModelError):
    """A cut point that does not exist or where more than one tensor would cross."""


class ExportError(EdgesplitError):
    """An export that cannot be done as asked (precision, calibration, operator, output folder, TensorRT)."""


class BundleError(ExportError):
    """A bundle folder that is incomplete, tampered with, or of an unknown schema."""


class BackendError(EdgesplitError):
    """A backend that is not installed, cannot load a bundle, or produced unusable output (runtime package)."""


class DeviceError(EdgesplitError):
    """An unknown device profile, an unreachable remote device, or a failed remote command (devices package)."""


class AttackError(EdgesplitError):
    """An attack that cannot run as asked (decoder, features, pairing, sample count)."""


class DataError(EdgesplitError):
    """A data set name, root folder, file format or split that cannot be used."""


class DefenseError(EdgesplitError):
    """A defense, its parameters or its cut that cannot be used as asked."""


class BenchError(EdgesplitError):
    """A sweep spec, results file or plan that cannot be used as asked."""


def closest(name: str, choices, n: int = 3) -> str:
    """'closest: a, b' (or the first few valid choices) for an error message about `name`."""
    import difflib

    choices = list(dict.fromkeys(choices))
    near = difflib.get_close_matches(name, choices, n=n, cutoff=0.5)
    if near:
        return "closest: " + ", ".join(near)
    shown = ", ".join(choices[:8]) + (", ..." if len(choices) > 8 else "")
    return "valid: " + shown
