"""DatasetInfo round-trips through JSON."""

import json

import pytest

from edgesplit.data import DatasetInfo, load_dataset
from edgesplit.errors import DataError


def test_info_round_trips_through_json():
    info = load_dataset("digits", split="attack", channels=3, img_size=16).info
    again = DatasetInfo.from_dict(json.loads(json.dumps(info.to_dict())))
    assert again == info and isinstance(again.mean, tuple) and isinstance(again.classes, tuple)
    with pytest.raises(DataError, match="missing"):
        DatasetInfo.from_dict({"name": "digits"})
