"""The seeds' attack settings by name: each preset's model, cuts and decoder agree with the seed."""

import pytest
import torch

from edgesplit.attacks.decoders import create_decoder
from edgesplit.attacks.presets import PRESETS, get_preset, list_presets
from edgesplit.errors import AttackError
from edgesplit.models import create_model
from edgesplit.models.cuts import analyse


@pytest.mark.parametrize("name", list_presets())
def test_preset_cuts_give_the_seeds_feature_shapes_and_its_decoder_reaches_the_image(name):
    preset = PRESETS[name]
    model = create_model(preset.model, img_size=preset.img_size, seed=0, **preset.model_kwargs)
    analysis = analyse(model, torch.zeros(1, preset.in_chans, preset.img_size, preset.img_size))
    image = (preset.in_chans, preset.img_size, preset.img_size)
    for cut, _seed_name, shape in preset.cuts:
        assert analysis.resolve(cut).shape == shape, f"{name}: {cut}"
        decoder = create_decoder(preset.decoder.decoder, shape, image, **preset.decoder.decoder_kwargs)
        with torch.no_grad():
            assert decoder.eval()(torch.rand(1, *shape)).shape == (1, *image)


def test_preset_settings_follow_the_seeds():
    assert get_preset("cem-standard").cuts[0][2] == (8, 8, 8) and get_preset("cem-standard").decoder.weight_decay == 1e-4
    recon = get_preset("reconstruction-bicubic").decoder
    assert (recon.noise_mean, recon.noise_std, recon.noise_at_test) == (0.03, 0.03, True)
    assert (recon.schedule, recon.lr_gamma, recon.lr) == ("exponential", 0.93, 2.5e-4)
    gpz = get_preset("gpz-vgg19bn")
    assert [c for c, _, _ in gpz.cuts][0] == "features.12" and gpz.decoder.amsgrad and gpz.decoder.lr == 0.01
    with pytest.raises(AttackError, match="unknown preset 'gpz-classifer4'.*gpz-classifier4"):
        get_preset("gpz-classifer4")
