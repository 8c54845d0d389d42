"""Bounds on what the renderer can do faithfully and within memory, stated once for the library, CLI and nodes.

Model time. The motion path runs in float64 (see `motion`), and the error of its
Fourier angles grows like eps · angle, that is in proportion to t. The model was
trained on the float32 path with clips of at most `max_num_frames` (1024 = 2^10
for the original configs) dataset frames, so the error it was trained with is
eps32 · angle(2^10). float64 keeps the error below that up to
2^10 · eps32 / eps64 = 2^10 · 2^29 = 2^39 ≈ 5.5e11 dataset frames (about 700
years at 25 fps). Code indices floor(t / Δ) then fit int64 with room to spare,
and t stays far below 2^53, where float64 stops holding every dataset frame.

Memory. A batch of videos rendered a chunk at a time holds, per frame, the
modulated weights of the widest synthesis layer (the modulated convolution
builds a weight tensor per sample, twice when it demodulates) and that layer's
input and output activations, plus the finished frame and its encoded copy.
`render_memory_bytes` sums that from the network's shapes; `memory_budget` is
half the memory the device has free, leaving the rest to the model, the
encoder and everything else on the machine.
"""

from __future__ import annotations

import math
import os

import torch

MAX_MODEL_TIME = 2.0 ** 39
BUDGET_FRACTION = 0.5


def check_model_time(t: torch.Tensor, what: str = "timestamps") -> torch.Tensor:
    """t (dataset frames) unchanged if every value is finite and in [0, MAX_MODEL_TIME); else a ValueError."""
    t = torch.as_tensor(t)
    if t.numel() == 0:
        return t
    if bool(torch.isnan(t).any()):
        raise ValueError(f"{what} must be numbers, got NaN")
    low, high = float(t.min()), float(t.max())
    if low < 0:
        raise ValueError(f"{what} must be >= 0 (the motion starts at model time 0), got {low:g}")
    if not high < MAX_MODEL_TIME:
        raise ValueError(f"{what} reach model time {high:.4g} dataset frames, beyond the limit of "
                         f"{MAX_MODEL_TIME:.4g} (2^39) up to which the motion path is exact; "
                         "lower the start time, speed, duration or dataset fps")
    return t


def max_seconds(dataset_fps: float) -> float:
    """The latest playback time (seconds at speed 1) a model of `dataset_fps` can show."""
    return MAX_MODEL_TIME / dataset_fps


def _layer_bytes(G, element_size: int) -> int:
    """Peak bytes per frame of the widest synthesis layer: 2 modulated weights + input + 2x output."""
    cfg = G.synthesis.cfg
    peak = 0
    for res in G.synthesis.block_resolutions:
        out = cfg.channels(res)
        inputs = [(out + cfg.motion_v_dim, res)] if res == 4 else [(cfg.channels(res // 2), res // 2), (out, res)]
        for in_ch, in_res in inputs:
            numel = 2 * out * in_ch * 9 + in_ch * in_res ** 2 + 2 * out * res ** 2
            peak = max(peak, numel)
    return peak * element_size


def render_memory_bytes(G, videos: int, frames_per_chunk: int, scale: int = 1) -> int:
    """Estimated peak bytes of rendering `videos` x `frames_per_chunk` frames at once (see the module docstring).

    Counted: the widest layer's working set per frame (float32), the float32 frames of the chunk, and
    those frames enlarged `scale` times (a smooth resize computes in float32 before the uint8 copy, so
    5 bytes per enlarged value), and the videos' latents.
    """
    n = int(videos) * int(frames_per_chunk)
    pixels = G.img_channels * G.img_resolution ** 2
    per_frame = _layer_bytes(G, 4) + 4 * pixels + 5 * pixels * scale ** 2
    per_video = 4 * G.num_ws * G.synthesis.w_dim
    return n * per_frame + int(videos) * per_video


def available_bytes(device: torch.device | str = "cpu") -> int | None:
    """Memory free on `device` now (None where it cannot be told)."""
    device = torch.device(device)
    if device.type == "cuda":
        try:
            return int(torch.cuda.mem_get_info(device)[0])
        except (RuntimeError, AssertionError):
            return None
    try:  # MemAvailable counts reclaimable cache, which free pages do not
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def memory_budget(device: torch.device | str = "cpu") -> int | None:
    free = available_bytes(device)
    return None if free is None else int(free * BUDGET_FRACTION)


def check_render_memory(G, videos: int, frames_per_chunk: int, scale: int = 1,
                        budget: int | None = None, device: torch.device | str = "cpu") -> int:
    """The estimate, or a MemoryError that gives it, the budget and the remedy."""
    need = render_memory_bytes(G, videos, frames_per_chunk, scale)
    budget = memory_budget(device) if budget is None else budget
    if budget is not None and need > budget:
        fits = max(0, budget // max(1, render_memory_bytes(G, 1, 1, scale)))
        raise MemoryError(f"rendering {videos} videos x {frames_per_chunk} frames at once needs about "
                          f"{_gib(need)}, more than the budget of {_gib(budget)} (half the free memory); "
                          f"use a smaller chunk or fewer videos (about {fits:,} videos x frames fit at once)")
    return need


def _gib(n: int) -> str:
    return f"{n / 2 ** 30:.2f} GiB" if n >= 2 ** 28 else f"{math.ceil(n / 2 ** 20)} MiB"
