"""INT8 calibration: the methods really differ, and too little calibration data is refused."""

import numpy as np
import pytest

from edgesplit.errors import DataError, ExportError
from edgesplit.export import ExportConfig, export_bundle


def test_calibration_methods_really_differ(tmp_path):
    digests = {}
    for method in ("minmax", "entropy", "percentile"):
        config = ExportConfig("classifier4", "features.1", precision="int8", input_shape=(1, 32, 32),
                              calib_method=method, calib_size=64, eval_size=32)
        bundle = export_bundle(config, tmp_path / method)
        digests[method] = bundle.manifest["files"]["head.onnx"]["sha256"]
        assert bundle.manifest["calibration"]["method"] == method
    assert len(set(digests.values())) == 3, "entropy/percentile must not silently equal minmax"


def test_empty_or_small_calibration_data_on_disk(tmp_path):
    from PIL import Image

    root = tmp_path / "imgs"
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(root / cls / f"{i}.png")
    config = ExportConfig("classifier4", "features.0", precision="int8", input_shape=(3, 32, 32),
                          calib_data="imagefolder", calib_root=str(root), calib_size=64, eval_size=8)
    with pytest.raises(ExportError, match="calibration set has only 6 samples"):
        export_bundle(config, tmp_path / "b")
    with pytest.raises(DataError, match="--data-root"):
        export_bundle(ExportConfig("classifier4", "features.0", precision="int8", calib_data="cifar10",
                                   input_shape=(3, 32, 32)), tmp_path / "c")
