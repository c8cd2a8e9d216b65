"""What every CLI command prints through: tables, JSON, and a parser whose errors are one line.

Argument types and the flags several commands share are in `edgesplit.cli.arguments`.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections.abc import Sequence


def human(n: float, unit: str = "") -> str:
    for threshold, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(n) >= threshold:
            return f"{n / threshold:.2f}{suffix}{unit}"
    return f"{n:g}{unit}"


def print_table(headers: Sequence[str], rows: Sequence[Sequence[object]], out=None) -> None:
    """A plain aligned text table (numbers right-aligned)."""
    out = out or sys.stdout
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    numeric = [all(_is_number(r[i]) for r in cells[1:]) and len(cells) > 1 for i in range(len(headers))]

    def fmt(row):
        return "  ".join(c.rjust(w) if num else c.ljust(w) for c, w, num in zip(row, widths, numeric, strict=True)).rstrip()

    print(fmt(cells[0]), file=out)
    print("  ".join("-" * w for w in widths), file=out)
    for r in cells[1:]:
        print(fmt(r), file=out)


def _is_number(s: str) -> bool:
    return bool(re.match(r"^-?[\d.,]+[kMG]?[A-Za-z]*$", s)) and any(ch.isdigit() for ch in s)


def print_json(obj) -> None:
    json.dump(obj, sys.stdout, indent=2)
    sys.stdout.write("\n")


class DefaultsShown(argparse.RawDescriptionHelpFormatter):
    """Descriptions as written; every option's help ends with its default unless it already says it."""

    def _get_help_string(self, action) -> str:
        text = action.help or ""
        default = action.default
        # identity, not `in (None, False)`: a default of 0 equals False and must still be shown
        if (not action.option_strings or "default" in text.lower() or action.required
                or default is None or default is False or default is argparse.SUPPRESS or default == []):
            return text
        shown = "none" if default == "" else "%(default)s"  # '' would read '(default: )'
        return f"{text} (default: {shown})"

    def _split_lines(self, text: str, width: int) -> list[str]:
        """Wrapped as argparse does, but never inside a hyphenated word: '--list-presets' stays whole."""
        import textwrap

        return textwrap.wrap(self._whitespace_matcher.sub(" ", text).strip(), width, break_on_hyphens=False)


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a usage error is one line ('edgesplit cuts: error: ...') and exit code 2, and --help
    shows every option's default (`DefaultsShown`)."""

    def __init__(self, *args, **kwargs) -> None:
        wanted = kwargs.get("formatter_class", argparse.HelpFormatter)
        if wanted in (argparse.HelpFormatter, argparse.RawDescriptionHelpFormatter):
            kwargs["formatter_class"] = DefaultsShown
        super().__init__(*args, **kwargs)

    def error(self, message: str):  # noqa: D401 - argparse API
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
