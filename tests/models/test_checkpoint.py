"""Checkpoints: they record the architecture, never execute code, carry a tensor digest, and a corrupt or
malformed one is refused in one line."""

import pickle

import pytest
import torch

from edgesplit.errors import ModelError
from edgesplit.models import create_model, load_checkpoint, save_checkpoint
from edgesplit.progress import RecordingProgress
from tests.models.helpers import MALFORMED


def test_checkpoint_roundtrip_records_the_architecture(tmp_path):
    model = create_model("resnet20", num_classes=4, img_size=32)
    path = save_checkpoint(model, tmp_path / "r20.pt", metrics={"test_accuracy": 0.5})
    ckpt = load_checkpoint(path)
    assert ckpt.spec.name == "resnet20" and ckpt.spec.num_classes == 4 and ckpt.metrics["test_accuracy"] == 0.5
    again = create_model("resnet20", checkpoint=str(path))
    assert again.edgesplit_spec.num_classes == 4
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values(), strict=True))


def test_checkpoint_for_another_architecture_is_refused(tmp_path):
    path = save_checkpoint(create_model("resnet20"), tmp_path / "r20.pt")
    with pytest.raises(ModelError, match="saved for model 'resnet20', not 'resnet18'"):
        create_model("resnet18", checkpoint=str(path))
    with pytest.raises(ModelError, match="has num_classes=10, but num_classes=5"):
        create_model("resnet20", num_classes=5, checkpoint=str(path))


def test_bare_state_dict_of_another_architecture_is_refused(tmp_path):
    path = tmp_path / "sd.pt"
    torch.save(create_model("resnet20").state_dict(), path)
    with pytest.raises(ModelError, match="does not fit model 'vgg11_bn'.*missing"):
        create_model("vgg11_bn", checkpoint=str(path))
    assert create_model("resnet20", checkpoint=str(path)) is not None


def test_checkpoint_with_code_is_not_executed(tmp_path):
    class Evil:
        def __reduce__(self):
            return (exec, ("open('PWNED', 'w').write('x')",))

    path = tmp_path / "evil.pt"
    path.write_bytes(pickle.dumps({"state_dict": Evil()}))
    with pytest.raises(ModelError, match="cannot be read as a weights-only torch file"):
        load_checkpoint(path)
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize("content, pattern", [(b"", "cannot be read"), (b"garbage" * 10, "cannot be read")])
def test_corrupt_checkpoint(tmp_path, content, pattern):
    path = tmp_path / "bad.pt"
    path.write_bytes(content)
    with pytest.raises(ModelError, match=pattern):
        load_checkpoint(path)


def test_missing_checkpoint(tmp_path):
    with pytest.raises(ModelError, match="does not exist"):
        create_model("resnet18", checkpoint=str(tmp_path / "nope.pt"))


def test_checkpoints_without_a_digest_load_with_a_note(c4_gray, tmp_path):
    bare = tmp_path / "bare.pt"
    torch.save(create_model("classifier4", in_chans=1).state_dict(), bare)
    progress = RecordingProgress()
    ckpt = load_checkpoint(bare, progress)
    assert ckpt.spec is None and "without" in ckpt.note and "digest" in ckpt.note
    assert ("message", ckpt.note, None) in progress.events
    old = torch.load(c4_gray, weights_only=True)
    del old["tensors_sha256"]  # as written by an edgesplit before digests
    torch.save(old, tmp_path / "old.pt")
    progress = RecordingProgress()
    model = create_model("classifier4", checkpoint=str(tmp_path / "old.pt"), progress=progress)
    assert model.edgesplit_spec.in_chans == 1
    assert any(kind == "message" and "digest" in text for kind, text, _ in progress.events)


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_checkpoints_are_one_line_errors(case, tmp_path):
    payload, expected = MALFORMED[case]
    path = tmp_path / f"{case}.pt"
    torch.save(payload, path)
    with pytest.raises(ModelError) as err:
        load_checkpoint(path)
    assert expected in str(err.value) and "\n" not in str(err.value)
