"""Motions: anything that yields motion codes for a window of code indices.

The generator turns codes u_j (one every Δ dataset frames) into v(t). Every
motion here implements two methods, so that the renderer can stay ignorant of
how codes are made:

    codes(G, first, last, c) -> [B, last - first + 1, code_dim]   codes first..last
    model_time(G, t) -> t'                                        time remapping (loops wrap)

Seeded noise is drawn in fixed blocks, each from its own counter-based stream
keyed by (seed, video, block): a noise vector depends only on its index, which
makes motion prefix-stable (a longer timeline never changes earlier frames) and
independent of batch size and chunking. Codes are likewise computed in fixed,
aligned blocks so that a code's value never depends on which window asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import torch

from .batching import combined_batch
from .generator import Generator

NOISE_BLOCK = 64
CODE_BLOCK = 32
CODE_MEAN_SAMPLES = 512


def check_seed(seed: int) -> int:
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return seed


def seeded_normal(key: list[int], shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(key).standard_normal(shape, dtype=np.float32)


def motion_noise(seed: int, video_index: int, start: int, stop: int, dim: int) -> torch.Tensor:
    """Noise vectors start..stop-1 of video `video_index`'s motion: [stop - start, dim]."""
    seed = check_seed(seed)
    if not 0 <= start <= stop:
        raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
    first, last = start // NOISE_BLOCK, max(start, stop - 1) // NOISE_BLOCK
    blocks = [seeded_normal([seed, video_index, 1, block], (NOISE_BLOCK, dim)) for block in range(first, last + 1)]
    offset = first * NOISE_BLOCK
    return torch.from_numpy(np.concatenate(blocks)[start - offset: stop - offset])


def _device(G: Generator) -> torch.device:
    return next(G.parameters()).device


def _labels(G: Generator, c: torch.Tensor | None, batch: int) -> torch.Tensor | None:
    if G.c_dim == 0:
        return None
    if c is None:
        raise ValueError("this model is class-conditional: pass class labels c (see render.class_labels)")
    c = c.to(_device(G))
    return c if c.shape[0] == batch else c[:1].expand(batch, -1)


NoiseSource = Callable[[int, int, int], torch.Tensor]  # (start, stop, dim) -> [B, stop - start, dim]


def block_codes(G: Generator, noise: NoiseSource, batch_size: int, first: int, last: int,
                c: torch.Tensor | None = None) -> torch.Tensor:
    """Codes first..last [B, last - first + 1, code_dim] of the noise sequence `noise` reads.

    Computed in aligned blocks of CODE_BLOCK codes, so a code's value never depends on which
    window asked; every motion made of one noise sequence (seeded, fitted) computes them here.
    """
    enc = G.synthesis.motion_encoder
    labels = _labels(G, c, batch_size)
    blocks = []
    for block in range(first // CODE_BLOCK, last // CODE_BLOCK + 1):
        start = block * CODE_BLOCK
        window = noise(start, start + CODE_BLOCK + enc.receptive_field - 1, enc.z_dim).to(_device(G))
        blocks.append(enc.codes(window, labels))
    offset = (first // CODE_BLOCK) * CODE_BLOCK
    return torch.cat(blocks, dim=1)[:, first - offset: last - offset + 1]


@runtime_checkable
class Motion(Protocol):
    batch_size: int

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor: ...

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor: ...


@dataclass(frozen=True)
class MotionSeed:
    """Seeded motion for `batch_size` videos (video b uses stream b of the seed)."""

    seed: int
    batch_size: int = 1

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.batch_size < 1:
            raise ValueError(f"motion batch_size must be >= 1, got {self.batch_size}")

    def noise(self, start: int, stop: int, dim: int) -> torch.Tensor:
        """[batch_size, stop - start, dim]."""
        return torch.stack([motion_noise(self.seed, b, start, stop, dim) for b in range(self.batch_size)])

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor:
        return block_codes(G, self.noise, self.batch_size, first, last, c)

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor:
        return t


@dataclass(frozen=True)
class LoopingMotion:
    """Motion whose codes repeat every `period_codes` codes, played on t mod period.

    The convolution runs on circularly repeated noise, so the codes themselves are
    periodic; since v(t) at a knot depends only on that knot's code and is continuous,
    the frame just before the wrap flows into the first one with no jump.
    """

    seed: int
    batch_size: int = 1
    period_codes: int = 4

    def __post_init__(self) -> None:
        check_seed(self.seed)
        if self.batch_size < 1:
            raise ValueError(f"motion batch_size must be >= 1, got {self.batch_size}")
        if self.period_codes < 1:
            raise ValueError(f"a loop needs at least one motion code, got period_codes={self.period_codes}")

    def period(self, G: Generator) -> int:
        """Loop length in model time (dataset frames)."""
        return self.period_codes * G.synthesis.motion_encoder.distance

    def _cycle_block(self, G: Generator, c: torch.Tensor | None, block: int) -> torch.Tensor:
        """Codes block*CODE_BLOCK.. of one period (fewer in the last block), from noise read around the cycle.

        Only the blocks a window needs are computed, so a period of a billion codes costs what
        a short one does; the blocks are aligned, so a code never depends on which window asked.
        """
        enc = G.synthesis.motion_encoder
        start = block * CODE_BLOCK
        count = min(CODE_BLOCK, self.period_codes - start)
        needed = (start + torch.arange(count + enc.receptive_field - 1)) % self.period_codes
        lo, hi = int(needed.min()), int(needed.max())
        if hi - lo + 1 <= len(needed):  # no wrap (or a period shorter than the window): one read
            noise = MotionSeed(self.seed, self.batch_size).noise(lo, hi + 1, enc.z_dim)[:, needed - lo]
        else:  # the window wraps: the end of the period, then its start
            tail = MotionSeed(self.seed, self.batch_size).noise(start, self.period_codes, enc.z_dim)
            head = MotionSeed(self.seed, self.batch_size).noise(0, int(needed[-1]) + 1, enc.z_dim)
            noise = torch.cat([tail, head], dim=1)
        return enc.codes(noise.to(_device(G)), _labels(G, c, self.batch_size))

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor:
        wanted = torch.arange(first, last + 1) % self.period_codes
        blocks = {int(b): self._cycle_block(G, c, int(b)) for b in torch.unique(wanted // CODE_BLOCK)}
        if len(blocks) == 1:
            (block, values), = blocks.items()
            return values[:, wanted - block * CODE_BLOCK]
        table = torch.cat(list(blocks.values()), dim=1)
        offsets = {block: sum(v.shape[1] for b, v in blocks.items() if b < block) for block in blocks}
        index = torch.tensor([offsets[int(j) // CODE_BLOCK] + int(j) % CODE_BLOCK for j in wanted])
        return table[:, index]

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor:
        return torch.remainder(t, self.period(G))


@dataclass(frozen=True)
class BlendedMotion:
    """Codes interpolated between two motions: weight 0 gives `a`, 1 gives `b`, exactly."""

    a: Motion
    b: Motion
    weight: float

    def __post_init__(self) -> None:
        if _period_codes(self.a) != _period_codes(self.b):
            raise ValueError("cannot blend motions with different looping (both must loop with the same period, "
                             "or neither)")

    @property
    def batch_size(self) -> int:
        return combined_batch(self.a.batch_size, self.b.batch_size, "motion a", "motion b")

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor:
        b = self.batch_size
        ca = self.a.codes(G, first, last, c).expand(b, -1, -1)
        cb = self.b.codes(G, first, last, c).expand(b, -1, -1)
        return torch.lerp(ca, cb, float(self.weight))  # exact at 0 and 1

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor:
        return self.a.model_time(G, t)


@dataclass(frozen=True)
class ScaledMotion:
    """Motion intensity: codes pulled toward the model's mean code, like truncation psi for content.

    intensity 1 is the input motion, 0 collapses every code to the mean (only the model's
    small within-segment wiggle remains), values above 1 exaggerate.
    """

    base: Motion
    intensity: float

    @property
    def batch_size(self) -> int:
        return self.base.batch_size

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor:
        codes = self.base.codes(G, first, last, c)
        if self.intensity == 1:
            return codes
        return torch.lerp(mean_code(G, c).to(codes.device), codes, float(self.intensity))

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor:
        return self.base.model_time(G, t)


def mean_code(G: Generator, c: torch.Tensor | None = None) -> torch.Tensor:
    """The average motion code of a model (estimated from fixed noise, cached on the module)."""
    enc = G.synthesis.motion_encoder
    key = None if c is None else tuple(c[0].tolist())
    cache = enc.__dict__.setdefault("_mean_code_cache", {})
    if key not in cache:
        noise = MotionSeed(0).noise(0, CODE_MEAN_SAMPLES + enc.receptive_field - 1, enc.z_dim).to(_device(G))
        with torch.no_grad():
            cache[key] = enc.codes(noise, _labels(G, None if c is None else c[:1], 1)).mean(dim=1).squeeze(0)
    return cache[key]


def loop_of(motion: Motion) -> LoopingMotion | None:
    """The looping motion whose clock `motion` plays (None if it does not loop).

    A blend plays on its first motion's clock; motions that wrap another one (intensity here,
    selections in `grids`) keep it in `base` and play on its clock.
    """
    while not isinstance(motion, LoopingMotion):
        motion = motion.a if isinstance(motion, BlendedMotion) else getattr(motion, "base", None)
        if motion is None:
            return None
    return motion


def _period_codes(motion: Motion) -> int | None:
    loop = loop_of(motion)
    return None if loop is None else loop.period_codes


def loop_period_codes(seconds: float, dataset_fps: float, distance: int) -> int:
    """Codes in a loop of about `seconds` (the renderer stretches time to fit it exactly)."""
    if not seconds > 0:
        raise ValueError(f"loop period must be positive, got {seconds}")
    return max(1, round(seconds * dataset_fps / distance))
