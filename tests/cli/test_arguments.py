"""One parser reads every input shape: the command line's, the sweep spec's and the vocabulary's agree."""

import pytest


@pytest.mark.parametrize("text, expected", [("3x32x32", (3, 32, 32)), (" 1 X 28 × 28 ", (1, 28, 28))])
def test_one_parser_reads_every_input_shape(text, expected):
    from edgesplit.bench.spec import SweepModel
    from edgesplit.cli.arguments import input_shape
    from edgesplit.vocab import parse_chw

    assert parse_chw(text) == input_shape(text) == SweepModel("m", input=text).input_shape == expected
    for bad in ("3x32", "axbxc", "3x32x32x", "3x-1x3", ""):
        with pytest.raises(ValueError, match="is not CHANNELSxHEIGHTxWIDTH, e.g. 3x32x32"):
            parse_chw(bad)
