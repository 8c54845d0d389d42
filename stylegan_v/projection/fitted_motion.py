"""A fitted motion: a prefix of motion noise stored as numbers, continued by seeded noise.

StyleGAN-V's motion is a function of a sequence of noise vectors (code j reads noise
j .. j + receptive_field - 1). A motion fitted to a clip is the first `prefix.shape[1]`
vectors of such a sequence; every later vector is drawn from `tail_seed` exactly as a
`MotionSeed` draws it, so the motion is defined for any length, is prefix-stable, and
past the fitted part it continues as the model's own prior would.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..generator import Generator
from ..motions import MotionSeed, block_codes, check_seed

# The noise index of video b's fitted prefix maps to the tail seed's stream b: a
# batch of fitted motions continues each video with its own stream.


@dataclass(frozen=True, eq=False)
class FittedMotion:
    """Motion noise [B, P, z_dim] for indices 0..P-1, then `MotionSeed(tail_seed, B)` noise."""

    prefix: torch.Tensor
    tail_seed: int = 0

    def __post_init__(self) -> None:
        check_seed(self.tail_seed)
        p = self.prefix
        if not isinstance(p, torch.Tensor) or p.ndim != 3 or p.shape[0] < 1 or p.shape[1] < 1 or p.shape[2] < 1:
            raise ValueError(f"fitted motion noise must be a [B, P, z_dim] tensor, got "
                             f"{list(p.shape) if isinstance(p, torch.Tensor) else type(p).__name__}")
        if not p.is_floating_point() or not bool(torch.isfinite(p).all()):
            raise ValueError("fitted motion noise must be finite floating-point numbers")
        # Stored detached on the CPU in float32 so that the motion is a value, like a seed.
        object.__setattr__(self, "prefix", p.detach().to("cpu", torch.float32).contiguous())

    @property
    def batch_size(self) -> int:
        return self.prefix.shape[0]

    @property
    def fitted_noise(self) -> int:
        """How many leading noise vectors are fitted (the rest come from the tail seed)."""
        return self.prefix.shape[1]

    def __repr__(self) -> str:
        return f"FittedMotion(prefix=<{list(self.prefix.shape)} noise>, tail_seed={self.tail_seed})"

    def noise(self, start: int, stop: int, dim: int) -> torch.Tensor:
        """Noise vectors start..stop-1: [B, stop - start, dim]."""
        if dim != self.prefix.shape[2]:
            raise ValueError(f"this fitted motion has {self.prefix.shape[2]}-d noise; the model needs {dim}-d "
                             "(it was fitted with another model)")
        p = self.fitted_noise
        head = self.prefix[:, min(start, p):min(stop, p)]
        if stop <= p:
            return head
        tail = MotionSeed(self.tail_seed, self.batch_size).noise(max(start, p), stop, dim)
        return torch.cat([head, tail], dim=1)

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor:
        return block_codes(G, self.noise, self.batch_size, first, last, c)

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor:
        return t
