"""Model options are a registry other packages fill: one nobody registered names the package to import."""

import pytest

from edgesplit.errors import ModelError
from edgesplit.models import create_model


def test_a_model_option_nobody_registered_names_the_package_to_import(monkeypatch):
    from edgesplit.models import options

    assert options.option_names()[:2] == ["bottleneck", "defense"], "a defense goes after a bottleneck"
    monkeypatch.setitem(options.KNOWN, "watermark", "edgesplit.watermarks")  # known, registered by nobody
    with pytest.raises(ModelError, match=r"^model option 'watermark' comes from edgesplit\.watermarks: import it "
                                         r"before building this model$") as err:
        create_model("classifier4", watermark={"strength": 1})
    assert len(str(err.value).splitlines()) == 1


def test_models_alone_refuse_a_defended_spec_until_defenses_are_imported():
    import subprocess
    import sys

    code = ("import sys\nfrom edgesplit.errors import ModelError\nfrom edgesplit.models import create_model\n"
            "assert 'edgesplit.defenses' not in sys.modules\n"
            "d = {'cut': 'features.1', 'name': 'noise', 'params': {}}\n"
            "try:\n    create_model('classifier4', in_chans=1, defense=d)\n"
            "except ModelError as e:\n    print(e)\n"
            "import edgesplit.defenses\nprint(create_model('classifier4', in_chans=1, defense=d).edgesplit_defense)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == ("model option 'defense' comes from edgesplit.defenses: import it before "
                                   "building this model")
    assert "'name': 'noise'" in out.splitlines()[1]
