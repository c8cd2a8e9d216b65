"""How much does each cut leak, over fp32 and int8 wires, to adaptive and transfer attackers and to each decoder?

    python benchmarks/attack_strength.py [--epochs 15 --quick]

1. classifier4 trained on the embedded digits (1x32x32): at every block cut, an fp32 bundle (fp32 wire) and an
   int8 bundle (int8 wire); the deconv decoder trained on the attack split's emitted features (adaptive), and on
   the fp32 bundle's features then applied to the int8 wire (transfer: the seed efficient-split-dnn-privacy's
   setting). Scored on the test split (PSNR per image then averaged; SSIM 11x11 Gaussian), beside the floor.
2. Every decoder at two cuts (int8 wire, adaptive).
3. A CIFAR-shaped setting: vgg11_bn_sgm (CEM's model) at 3x32x32 on the digits replicated to 3 channels (not
   CIFAR itself: no data set is downloaded), fp32 vs int8 wire.
4. Decoder training throughput: edgesplit's train_decoder vs a plain PyTorch loop of the same decoder, same data.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine  # noqa: E402

from edgesplit.attacks import DecoderConfig, create_decoder, train_decoder  # noqa: E402
from edgesplit.attacks.audit import audit  # noqa: E402
from edgesplit.attacks.pairing import images_for  # noqa: E402
from edgesplit.data import load_dataset  # noqa: E402
from edgesplit.export import ExportConfig, export_bundle  # noqa: E402
from edgesplit.models import create_model, cut_points, save_checkpoint, train_classifier  # noqa: E402
from edgesplit.models.training import TrainConfig  # noqa: E402
from edgesplit.runtime.emit import emit_split  # noqa: E402


def trained(name: str, channels: int, epochs: int, tmp: Path) -> tuple[str, float]:
    torch.manual_seed(0)
    train = load_dataset("digits", split="train", channels=channels)
    test = load_dataset("digits", split="test", channels=channels)
    model = create_model(name, num_classes=10, in_chans=channels, img_size=32)
    result = train_classifier(model, train, test, TrainConfig(epochs=epochs))
    return str(save_checkpoint(model, tmp / f"{name}.pt")), result.test_accuracy


_BUNDLES: dict = {}


def bundles_for(name, cut, ckpt, tmp):
    """fp32 and int8 bundles of one cut with their attack/test features, built once per (model, cut)."""
    if (name, cut) in _BUNDLES:
        return _BUNDLES[name, cut]
    out = _BUNDLES[name, cut] = {}
    for precision in ("fp32", "int8"):
        b = export_bundle(ExportConfig(name, cut, precision, checkpoint=ckpt, calib_size=256, eval_size=64),
                          tmp / f"{name}-{cut}-{precision}")
        out[precision] = (b, emit_split(b.path, "digits", "attack"), emit_split(b.path, "digits", "test"))
    return out


def fmt(m):
    return f"{m['psnr']['mean']:6.2f} {m['ssim']['mean']:6.3f}"


def strength_table(name, ckpt, tmp, epochs, cuts=None):
    rows = []
    model = create_model(name, checkpoint=ckpt)
    spec = model.edgesplit_spec
    for cut in cuts or [c.name for c in cut_points(model, torch.zeros(1, spec.in_chans, 32, 32))]:
        b = bundles_for(name, cut, ckpt, tmp)
        config = DecoderConfig(decoder="deconv", epochs=epochs)
        fp32 = audit(b["fp32"][0], b["fp32"][1], b["fp32"][2], config)
        int8 = audit(b["int8"][0], b["int8"][1], b["int8"][2], config, transfer_features=b["fp32"][1])
        shape = "x".join(map(str, b["int8"][0].manifest["cut"]["shape"]))
        rows.append((cut, shape, fp32["metrics"], int8["metrics"], int8["transfer"]["metrics"], int8["floor"]["metrics"]))
    return rows


def print_strength(title, rows):
    print(f"\n{title}\n(PSNR dB / SSIM, mean over the test split; floor = the attacker's mean image)")
    print(f"{'cut':<12}{'shape':<12}{'fp32 adaptive':>16}{'int8 adaptive':>16}{'int8 transfer':>16}{'floor':>16}")
    for cut, shape, a32, a8, t8, floor in rows:
        print(f"{cut:<12}{shape:<12}{fmt(a32):>16}{fmt(a8):>16}{fmt(t8):>16}{fmt(floor):>16}")


def decoder_table(ckpt, tmp, epochs, cuts):
    print("\nEvery decoder, classifier4, int8 wire, adaptive (PSNR dB / SSIM; seconds to train; images/s)")
    for cut in cuts:
        b = bundles_for("classifier4", cut, ckpt, tmp)
        for dec in ("deconv", "upsample", "resnet", "attention"):
            t0 = time.perf_counter()
            r = audit(b["int8"][0], b["int8"][1], b["int8"][2], DecoderConfig(decoder=dec, epochs=epochs))
            print(f"{cut:<12}{dec:<11}{fmt(r['metrics']):>16}{time.perf_counter() - t0:>9.1f} s"
                  f"{r['decoder']['images_per_second']:>10.0f}")


def throughput(ckpt, tmp, epochs):
    """Same decoder, same data, same batch size: edgesplit's train_decoder vs a bare PyTorch loop."""
    b = bundles_for("classifier4", "features.1", ckpt, tmp)["int8"]
    z, x = b[1].decoded(), images_for(b[1], b[0])
    print("\nDecoder training throughput (images/s), classifier4 features.1 int8, batch 64, "
          f"{epochs} epochs each, same process")
    for dec in ("deconv", "upsample"):
        t0 = time.perf_counter()
        ours = train_decoder(z, x, DecoderConfig(decoder=dec, epochs=epochs, patience=epochs + 1))
        ours_ips = ours.images_per_second
        torch.manual_seed(0)
        model = create_decoder(dec, z.shape[1:], x.shape[1:])
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        zt, xt = torch.from_numpy(z), torch.from_numpy(x)
        seen, t1 = 0, time.perf_counter()
        for _ in range(epochs):
            perm = torch.randperm(len(zt))
            for i in range(0, len(zt), 64):
                idx = perm[i: i + 64]
                loss = F.mse_loss(model(zt[idx]), xt[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
                seen += len(idx)
        plain_ips = seen / (time.perf_counter() - t1)
        print(f"{dec:<10} edgesplit {ours_ips:8.0f}   plain loop {plain_ips:8.0f}   ratio {ours_ips / plain_ips:5.2f}"
              f"   (edgesplit includes validation each epoch; wall {time.perf_counter() - t0:.0f} s)")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--quick", action="store_true", help="fewer cuts and epochs (smoke run)")
    args = p.parse_args(argv)
    epochs = 3 if args.quick else args.epochs
    print(f"machine: {machine()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        ckpt, acc = trained("classifier4", 1, 2 if args.quick else 8, tmp)
        print(f"classifier4 on digits (1x32x32): test accuracy {acc:.4f}; attacker: {epochs} epochs, attack split")
        rows = strength_table("classifier4", ckpt, tmp, epochs, ["features.1"] if args.quick else None)
        print_strength("1. classifier4, every block cut", rows)
        decoder_table(ckpt, tmp, epochs, ["features.1"] if args.quick else ["features.1", "features.3"])
        vgg, vacc = trained("vgg11_bn_sgm", 3, 2 if args.quick else 8, tmp)
        print(f"\nvgg11_bn_sgm on 3x32x32 digits: test accuracy {vacc:.4f}")
        vrows = strength_table("vgg11_bn_sgm", vgg, tmp, epochs,
                               ["features.7"] if args.quick else ["features.3", "features.7", "features.14"])
        print_strength("3. CIFAR-shaped (3x32x32): vgg11_bn_sgm", vrows)
        throughput(ckpt, tmp, 2 if args.quick else 5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
