"""The recorded tegrastats files and fake filesystem roots the device tests (and the command line's) read."""

from pathlib import Path

DATA = Path(__file__).parents[1] / "data" / "tegrastats"


def _fake_root(tmp_path: Path, files: dict[str, str | bytes]) -> str:
    for rel, content in files.items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    return str(tmp_path)
