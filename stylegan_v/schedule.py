"""Timeline scheduling: timestamps (model time, dataset frames) for every output frame.

All functions are pure and work on float64 tensors [F]; the output fps travels
with the caller's timeline. Model time must stay >= 0 (where the motion starts).
"""

from __future__ import annotations

import torch

from .curves import Curve
from .limits import check_model_time


def _check(t: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.ndim != 1 or t.numel() < 1:
        raise ValueError(f"a timeline is a non-empty 1-D tensor of timestamps, got shape {list(t.shape)}")
    return check_model_time(t)  # >= 0 and within the range the motion path renders exactly


def speed_curve(num_frames: int, fps: float, dataset_fps: float, speed: Curve, start_time: float = 0.0
                ) -> torch.Tensor:
    """Frame k (shown at k / fps s) shows model time (start_time + ∫_0^{k/fps} speed(s) ds) · dataset_fps.

    `speed` is keyed in output seconds: `Curve.parse("0:1, 2:0.25, 4:1", "smooth")` eases into 4x slow motion
    at 2 s and back to real time at 4 s.
    """
    if num_frames < 1 or not fps > 0 or not dataset_fps > 0:
        raise ValueError(f"need num_frames >= 1 and positive fps, got {num_frames}, {fps}, {dataset_fps}")
    seconds = torch.arange(num_frames, dtype=torch.float64) / fps
    played = speed.integral(seconds) - speed.integral(torch.zeros((), dtype=torch.float64))
    t = (start_time + played) * dataset_fps
    if float(t.min()) < -1e-9:
        raise ValueError("the speed curve runs the motion back before its start (model time < 0); raise the start "
                         "time or the speed")
    return _check(t.clamp(min=0))


def reverse(t: torch.Tensor) -> torch.Tensor:
    return _check(t).flip(0)


def ping_pong(t: torch.Tensor) -> torch.Tensor:
    """Forward then backward, without repeating the turning frames, so it loops cleanly."""
    t = _check(t)
    return torch.cat([t, t.flip(0)[1:-1]])


def freeze(t: torch.Tensor, at_frame: int, hold_frames: int) -> torch.Tensor:
    """Hold frame `at_frame` for `hold_frames` extra frames; the motion then resumes where it stopped."""
    t = _check(t)
    if not 0 <= at_frame < t.numel():
        raise ValueError(f"freeze frame must be in 0..{t.numel() - 1}, got {at_frame}")
    if hold_frames < 0:
        raise ValueError(f"hold_frames must be >= 0, got {hold_frames}")
    held = t[at_frame].repeat(hold_frames)
    return torch.cat([t[: at_frame + 1], held, t[at_frame + 1:]])


def offset(t: torch.Tensor, delta: float) -> torch.Tensor:
    """Shift model time by `delta` dataset frames."""
    shifted = _check(t) + delta
    if float(shifted.min()) < 0:
        raise ValueError(f"offset {delta:g} moves the timeline before model time 0 (its start is {float(t.min()):g})")
    return _check(shifted)


def concat(*timelines: torch.Tensor) -> torch.Tensor:
    if not timelines:
        raise ValueError("nothing to concatenate")
    return torch.cat([_check(t) for t in timelines])


def loop(num_frames: int, period: float) -> torch.Tensor:
    """Exactly one period of model time in `num_frames` frames, ending one step before it wraps."""
    if num_frames < 1 or not period > 0:
        raise ValueError(f"need num_frames >= 1 and a positive period, got {num_frames}, {period}")
    return _check(torch.arange(num_frames, dtype=torch.float64) * (period / num_frames))
