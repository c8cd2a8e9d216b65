"""ExportConfig refuses contradictory or too small calibration settings and suggests the closest option."""

import pytest

from edgesplit.errors import ExportError
from edgesplit.export import ExportConfig


def test_calibration_split_equal_to_evaluation_split():
    with pytest.raises(ExportError, match="calibration split and evaluation split are both 'test'"):
        ExportConfig("resnet18", "layer2.1", precision="int8", calib_split="test")


def test_too_small_calibration_set():
    with pytest.raises(ExportError, match="too small"):
        ExportConfig("resnet18", "layer2.1", precision="int8", calib_size=4)


def test_unknown_config_keys_suggest_the_closest():
    with pytest.raises(ExportError, match="unknown export option 'calib_sise'.*calib_size"):
        ExportConfig.from_dict({"model": "resnet18", "cut": "layer2.1", "calib_sise": 4})
    config = ExportConfig("resnet18", "layer2.1", input_shape=(3, 64, 64))
    assert ExportConfig.from_dict(config.to_dict()) == config
