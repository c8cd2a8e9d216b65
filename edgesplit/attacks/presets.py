"""The seeds' attack settings by name: model, input size, cuts, decoder and its training, reproducible.

    edgesplit audit --preset gpz-classifier4 --data digits --out audits/gpz
    edgesplit.bench.presets.run_preset("cem-standard", "audits/cem", PresetRun(data="cifar10", root=...))

Each preset fixes what the seed fixed (architecture, input size, cut, decoder layout, optimiser, schedule,
epochs, feature noise) and leaves the data to the user: the seeds' data sets (CIFAR, CelebA, ImageNet) are
not shipped, so `--data` names a local copy, or the embedded digits (resized to the preset's input) for a
run that works anywhere. The target model is the given checkpoint, or trained here on the data's train
split first (the attack and test splits stay disjoint from it). Every (cut, precision) is exported,
emitted and attacked like any bundle; INT8 runs also score the seed-style transfer attacker (decoder
trained on FP32 features). The seeds' metric mistakes (PSNR on batch means, peak 255 on normalised
tensors, SSIM over a batch array) are not reproduced: metrics follow edgesplit's per-image convention.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from edgesplit.attacks.training import DecoderConfig
from edgesplit.errors import AttackError
from edgesplit.registry import Registry


@dataclass(frozen=True)
class Preset:
    name: str
    source: str  # the seed and where its setting comes from
    model: str
    img_size: int
    cuts: tuple[tuple[str, str, tuple[int, ...]], ...]  # (edgesplit cut, the seed's name, feature shape C, H, W)
    decoder: DecoderConfig
    model_kwargs: dict = field(default_factory=dict)
    in_chans: int = 3
    note: str = ""

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["cuts"] = [{"cut": c, "seed_name": s, "shape": list(shape)} for c, s, shape in self.cuts]
        return d


_GPZ_DECODER = DecoderConfig(decoder="deconv", decoder_kwargs={"stem": False, "act": "tanh", "refine": 0}, lr=0.01,
                             betas=(0.5, 0.999), amsgrad=True, schedule="plateau", lr_gamma=0.5, epochs=100,
                             batch_size=128, patience=10)
_RECON_NOISE = {"noise_mean": 0.03, "noise_std": 0.03, "noise_at_test": True}
_RECON_CUT = (("features.13.block.0", "features[13] expansion conv", (672, 14, 14)),)


def _recon(depth: str) -> Preset:
    return Preset(
        f"reconstruction-{depth}", "reconstruction seed (transposed-conv autoencoder, --decoder_depth " + depth + ")",
        "mobilenet_v3_large", 224, _RECON_CUT,
        DecoderConfig(decoder="nonoverlap", decoder_kwargs={"depth": depth}, lr=1e-3, epochs=25, batch_size=512,
                      schedule="constant", **_RECON_NOISE),
        note="672x14x14 at 224 px (the seed ran 320 px: 672x20x20); feature noise N(0.03, 0.03^2) at train and "
             "test")


PRESETS: Registry[Preset] = Registry("preset", AttackError, hint="'edgesplit audit --list-presets' lists them",
                                     sort=True)
PRESETS.add_all([
    Preset("efficient-split-dnn-privacy", "efficient-split-dnn-privacy (attacker.py, Phase2_Quantization_FX.py)",
           "mobilenet_v3_small", 224, (("features", "features", (576, 7, 7)),),
           DecoderConfig(decoder="deconv", decoder_kwargs={"stem": False, "output": "tanh", "refine": 0}, lr=1e-3, epochs=5,
                         batch_size=64, schedule="constant"),
           note="five k4 s2 transposed convs + BN + ReLU, tanh output; the seed reused the FP32 decoder on INT8 "
                "features: here the transfer attacker, scored beside the adaptive one"),
    _recon("light"), _recon("medium"), _recon("deep"),
    Preset("reconstruction-bicubic", "reconstruction seed (--interpolation upsample)", "mobilenet_v3_large", 224,
           _RECON_CUT,
           DecoderConfig(decoder="upsample", decoder_kwargs={"stem": False, "act": "hardswish"}, lr=2.5e-4,
                         epochs=25, batch_size=128, schedule="exponential", lr_gamma=0.93, **_RECON_NOISE),
           note="bicubic upsampling + convs, Adam 2.5e-4 with gamma 0.93 per epoch"),
    Preset("gpz-classifier4", "Golden Partition Zone (Classifier_4 + Inversion_4)", "classifier4", 64,
           tuple((f"features.{i}", f"block {i + 1}", (64 << i, 32 >> i, 32 >> i)) for i in range(4)), _GPZ_DECODER,
           note="Inversion_4: k4 s2 transposed convs halving channels, BN + tanh, sigmoid output; Adam 0.01 "
                "(0.5, 0.999) amsgrad, ReduceLROnPlateau x0.5, 100 epochs"),
    Preset("gpz-vgg19bn", "Golden Partition Zone (VGG19-BN layer sweep, 64x64)", "vgg19_bn", 64,
           (("features.12", "layer 13", (128, 32, 32)), ("features.16", "layer 17", (256, 16, 16)),
            ("features.25", "layer 26", (256, 16, 16)), ("features.29", "layer 30", (512, 8, 8)),
            ("features.38", "layer 39", (512, 8, 8)), ("features.42", "layer 43", (512, 4, 4)),
            ("features.51", "layer 52", (512, 4, 4))), _GPZ_DECODER,
           note="the seed's layer L is the head features[:L], i.e. edgesplit cut features.(L-1)"),
    Preset("cem-standard", "CEM (VGG11-BN, cutlayer=4, 8-channel bottleneck, res_normN8C64)", "vgg11_bn", 32,
           (("features.7.squeeze", "cutlayer 4 + bottleneck C8", (8, 8, 8)),),
           DecoderConfig(decoder="resnet", decoder_kwargs={"width": 64, "blocks": 8}, lr=1e-3, weight_decay=1e-4,
                         schedule="cosine", min_lr_ratio=0.01, epochs=50, batch_size=256),
           model_kwargs={"bottleneck": {"after": "features.7", "channels": 8, "activation": "sigmoid"}},
           note="head conv64-pool-conv128-pool (128x8x8) then conv to 8 channels + BN + sigmoid: 512 values"),
])


def list_presets() -> list[str]:
    return PRESETS.names()


def get_preset(name: str) -> Preset:
    return PRESETS.get(name)
