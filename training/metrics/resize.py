"""The bilinear resize both standard detectors were calibrated with.

TensorFlow 1's `resize_bilinear` (align_corners=False, no half-pixel centres)
samples output pixel j at source coordinate j * in / out and clamps at the
border. Google's FVD code resizes frames this way before I3D, and NVIDIA's
Inception TorchScript reproduces the same sampling for FID. Torch's
`interpolate` uses half-pixel centres instead, which shifts the image by a
fraction of a pixel and changes the scores measurably, so it is not used.
"""

from __future__ import annotations

import torch


def _interpolation_matrix(size_in: int, size_out: int, device: torch.device) -> torch.Tensor:
    """[size_out, size_in] float32 matrix M with out = M @ in along one axis."""
    source = torch.arange(size_out, dtype=torch.float64, device=device) * (size_in / size_out)
    lower = source.floor().clamp(max=size_in - 1)
    weight_upper = (source - lower).to(torch.float32)
    lower = lower.long()
    upper = (lower + 1).clamp(max=size_in - 1)
    rows = torch.arange(size_out, device=device)
    matrix = torch.zeros(size_out, size_in, dtype=torch.float32, device=device)
    matrix.index_put_((rows, lower), 1 - weight_upper, accumulate=True)
    matrix.index_put_((rows, upper), weight_upper, accumulate=True)
    return matrix


def resize_bilinear_tf(images: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """[..., H, W] float -> [..., height, width] float32, TF1 legacy bilinear sampling."""
    if images.shape[-2:] == (height, width):
        return images.to(torch.float32)
    x = images.to(torch.float32)
    rows = _interpolation_matrix(x.shape[-2], height, x.device)
    cols = _interpolation_matrix(x.shape[-1], width, x.device)
    # Run under detectors.full_precision(): TF32 matmuls would round pixels to 10 mantissa bits.
    return torch.matmul(torch.matmul(rows, x), cols.T)
