"""Projection settings: one frozen dataclass, a fast default and a quality preset."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

LATENTS = ("w", "w+")
PERCEPTUALS = ("auto", "inception", "discriminator", "none")
PRECISIONS = ("float32", "bfloat16")


@dataclass(frozen=True)
class ProjectionConfig:
    """How a projection searches. Every field is checked on construction.

    steps: optimiser steps. learning_rate: Adam's peak step on the normalised latents (in units
    of the model's w spread); it ramps up over the first 5% of steps and down (cosine) over the
    last 25%. latent: "w" (one vector for every layer) or "w+" (one per layer). w_reg: weight of
    the squared distance to w_avg, in units of the w spread per dimension. w_noise: spread of the
    noise added to w early in the search (it fades out by 75% of the steps), which helps it out of
    poor local minima. perceptual: "inception" (the FID network's early layers, from the metrics
    extra), "discriminator" (the checkpoint's own D, where it has one), "none" (pixels only) or
    "auto" (inception when installed, else none, with a message). perceptual_weight: its weight
    next to the pixel loss (mean squared error on [-1, 1] pixels). perceptual_resolution: the size
    images are resized to for Inception (0: the model's resolution clamped to 128..299).
    motion_lr_scale: motion noise learning rate relative to learning_rate. noise_reg: weight of
    the motion noise's prior (its squared norm per value, i.e. a standard normal). motion_weight:
    weight of the loss on the differences between neighbouring frames of a clip. motion_warmup:
    the fraction of a clip's steps that fit the motion codes directly, before the motion noise is
    fitted to them from motion_restarts seeds; the rest fit the noise (see project_video).
    content_starts: a clip's search starts from the best of this many random w, judged on a few
    of its frames (0: from w_avg). frames_per_step:
    frames of a clip evaluated per step (0: all), drawn afresh each step. seed: every random
    choice (the initial tail of the motion, the frames drawn, the w noise). precision: float32,
    or bfloat16 autocast for the synthesis network.
    """

    steps: int = 150
    learning_rate: float = 0.08
    latent: str = "w+"
    w_reg: float = 0.002
    w_noise: float = 0.05
    perceptual: str = "auto"
    perceptual_weight: float = 0.05
    perceptual_resolution: int = 0
    motion_lr_scale: float = 3.0
    noise_reg: float = 0.001
    motion_weight: float = 3.0
    motion_warmup: float = 1.0
    motion_restarts: int = 8
    content_starts: int = 64
    frames_per_step: int = 8
    seed: int = 0
    precision: str = "float32"

    def __post_init__(self) -> None:
        if not isinstance(self.steps, int) or not 1 <= self.steps <= 100_000:
            raise ValueError(f"steps must be an integer in 1..100000, got {self.steps!r}")
        for name in ("learning_rate", "motion_lr_scale"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 10):
                raise ValueError(f"{name} must be in (0, 10], got {value!r}")
        for name in ("w_reg", "w_noise", "perceptual_weight", "noise_reg", "motion_weight"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 <= value <= 1000):
                raise ValueError(f"{name} must be in [0, 1000], got {value!r}")
        if self.latent not in LATENTS:
            raise ValueError(f"latent must be one of {', '.join(LATENTS)}, got {self.latent!r}")
        if self.perceptual not in PERCEPTUALS:
            raise ValueError(f"perceptual must be one of {', '.join(PERCEPTUALS)}, got {self.perceptual!r}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not isinstance(self.perceptual_resolution, int) or not (self.perceptual_resolution == 0
                                                                   or 32 <= self.perceptual_resolution <= 512):
            raise ValueError(f"perceptual_resolution must be 0 (auto) or 32..512, got {self.perceptual_resolution!r}")
        if not (isinstance(self.motion_warmup, (int, float)) and 0 <= self.motion_warmup <= 1):
            raise ValueError(f"motion_warmup must be a fraction in [0, 1], got {self.motion_warmup!r}")
        if not isinstance(self.motion_restarts, int) or not 1 <= self.motion_restarts <= 256:
            raise ValueError(f"motion_restarts must be an integer in 1..256, got {self.motion_restarts!r}")
        if not isinstance(self.content_starts, int) or not 0 <= self.content_starts <= 4096:
            raise ValueError(f"content_starts must be an integer in 0..4096, got {self.content_starts!r}")
        if not isinstance(self.frames_per_step, int) or not 0 <= self.frames_per_step <= 1024:
            raise ValueError(f"frames_per_step must be 0 (all) or 1..1024, got {self.frames_per_step!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer >= 0, got {self.seed!r}")

    def with_steps(self, steps: int) -> ProjectionConfig:
        return replace(self, steps=int(steps))


FAST = ProjectionConfig()
# A clip fits content and motion together and needs more steps than a picture: on six generated
# 16-frame clips of the sky demo model, 150 steps met both clip targets (mean PSNR >= 25 dB,
# per-frame change within 2x of the target's) on 4, 300 steps on 5
# (`python -m stylegan_v.projection_benchmark figures`).
FAST_VIDEO = replace(FAST, steps=300)
QUALITY = ProjectionConfig(steps=1000, learning_rate=0.05, frames_per_step=16, perceptual_weight=0.05)
PRESETS = {"fast": FAST, "quality": QUALITY}
VIDEO_PRESETS = {"fast": FAST_VIDEO, "quality": QUALITY}
