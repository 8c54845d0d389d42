"""Enlarging rendered frames for viewing: small models (32-64 px) are unreadable at their own size.

A video is enlarged by a whole factor so that every model pixel covers the same
number of screen pixels. `bicubic` (the default) and `bilinear` interpolate
between pixels, which shows a smooth picture; `nearest` repeats each pixel into a
block, which shows the model's exact pixels. Each video is enlarged on its own,
before videos are tiled into a grid, so a smooth filter never blends neighbours.
"""

from __future__ import annotations

import math

FILTERS = ("bicubic", "bilinear", "nearest")
DEFAULT_FILTER = "bicubic"
MIN_VIEW_SIZE = 256  # smallest side a video is enlarged to by default
MAX_SCALE = 16


def default_scale(resolution: int, min_size: int = MIN_VIEW_SIZE) -> int:
    """The smallest whole factor that makes a `resolution`-pixel video at least `min_size` pixels (1..MAX_SCALE)."""
    if resolution < 1:
        raise ValueError(f"resolution must be >= 1, got {resolution}")
    return max(1, min(MAX_SCALE, math.ceil(min_size / resolution)))


def check(scale: int, filter: str) -> None:
    """A ValueError naming the problem when `scale` or `filter` cannot be used."""
    if not 1 <= scale <= MAX_SCALE:
        raise ValueError(f"--scale must be 1..{MAX_SCALE}, got {scale}")
    if filter not in FILTERS:
        raise ValueError(f"--resize must be one of {', '.join(FILTERS)}, got {filter!r}")


def enlarge(frames, scale: int, filter: str = DEFAULT_FILTER):
    """Frames [..., C, H, W] enlarged to [..., C, H*scale, W*scale].

    `nearest` repeats pixels exactly and keeps the dtype. `bilinear` and `bicubic` interpolate at
    pixel centres (align_corners=False, the convention of image viewers) in float32 (float64 stays
    float64: interpolating integers is undefined, and half precision lacks CPU kernels in older
    torch). Bicubic may overshoot the input's range near edges; quantising (render.to_uint8) clamps it.
    """
    import torch
    import torch.nn.functional as F

    check(scale, filter)
    if scale == 1:
        return frames
    if filter == "nearest":
        return frames.repeat_interleave(scale, -2).repeat_interleave(scale, -1)
    lead, (c, h, w) = frames.shape[:-3], frames.shape[-3:]
    flat = frames.reshape(-1, c, h, w)
    if flat.dtype != torch.float64:
        flat = flat.float()
    out = F.interpolate(flat, scale_factor=scale, mode=filter, align_corners=False)
    return out.reshape(*lead, c, h * scale, w * scale)
