"""--help teaches: examples, and every option of every command says its format or choices and what happens
by default."""

import argparse

import pytest

from edgesplit.cli.main import build_parser, main


def _commands():
    parser = build_parser()
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                for inner in sub._actions:  # bundle pack/unpack/verify/engine, devices detect, ...
                    if isinstance(inner, argparse._SubParsersAction):
                        yield from ((f"{name} {n}", s) for n, s in inner.choices.items())


SILENT_OK = (argparse._HelpAction, argparse._VersionAction, argparse._StoreTrueAction, argparse._StoreFalseAction,
             argparse._SubParsersAction)


def test_help_teaches_with_examples(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["cuts", "--help"])
    assert exc.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out and "edgesplit cuts resnet18 --input 3x224x224" in out


@pytest.mark.parametrize("name,sub", list(_commands()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_option_has_help_that_names_its_default(name, sub):
    formatter = sub._get_formatter()
    missing = []
    for action in sub._actions:
        if not action.option_strings or isinstance(action, SILENT_OK):
            continue
        text = formatter._expand_help(action) if action.help else ""
        if not text or not (action.required or "default" in text.lower() or "required" in text.lower()):
            missing.append("/".join(action.option_strings))
    assert not missing, f"edgesplit {name}: options without help naming their default: {', '.join(missing)}"


def test_audit_help_names_every_decoder():
    from edgesplit.attacks.decoders import list_decoders
    from edgesplit.cli.audit_cmd import AUDIT_HELP

    missing = [name for name in list_decoders() if name not in AUDIT_HELP]
    assert not missing, f"'edgesplit audit --help' does not name the decoders {missing}"


@pytest.mark.parametrize("name,sub", list(_commands()), ids=lambda v: v if isinstance(v, str) else "")
def test_help_never_breaks_a_hyphenated_word_across_lines(name, sub):
    """'--list-presets' or 'comma-separated' split as '--list-' / 'presets' cannot be copied or searched."""
    import re

    broken = [line.strip() for line in sub.format_help().splitlines() if re.search(r"[A-Za-z]-$", line.rstrip())]
    assert not broken, f"edgesplit {name} --help breaks a word after: {broken}"
