"""Attacks: decoders trained on the exact features a device emits, metrics, and the privacy audit."""

from edgesplit.attacks.decoders import create_decoder, decoder_entries, list_decoders
from edgesplit.attacks.metrics import all_metrics, ms_ssim, psnr, ssim, summarise_all
from edgesplit.attacks.training import DecoderConfig, reconstruct, train_decoder

__all__ = ["DecoderConfig", "all_metrics", "create_decoder", "decoder_entries", "list_decoders", "ms_ssim", "psnr",
           "reconstruct", "ssim", "summarise_all", "train_decoder"]
