"""Streaming rendering: (content, seeded motion, timestamps) -> frames in chunks.

Memory is bounded by the chunk: each chunk draws only the motion noise its
timestamps need, so a ten-minute video costs no more than ten frames.

Motions (seeded, looping, blended, scaled) live in `motions`; content is a ws
tensor or a per-frame schedule (see `content`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from einops import rearrange

from .batching import combined_batch
from .content import ContentSchedule
from .content import batch_size as content_batch
from .generator import Generator
from .limits import MAX_MODEL_TIME, check_model_time
from .motions import CODE_BLOCK, NOISE_BLOCK, Motion, MotionSeed, check_seed, motion_noise, seeded_normal

__all__ = ["CODE_BLOCK", "NOISE_BLOCK", "Motion", "MotionSeed", "motion_noise", "content_latents", "class_labels",
           "sample_content", "timestamps", "motion_codes", "code_runs", "motion_window", "MAX_MODEL_TIME", "render_chunks", "render", "to_uint8",
           "to_unit", "grid"]


def content_latents(seed: int, batch_size: int, dim: int) -> torch.Tensor:
    """z for videos 0..batch_size-1 of a seed; video b's z does not depend on batch_size."""
    seed = check_seed(seed)
    return torch.from_numpy(np.stack([seeded_normal([seed, b, 0], (dim,)) for b in range(batch_size)]))


def class_labels(G: Generator, seed: int, batch_size: int, class_index: int | Sequence[int] | None = None
                 ) -> torch.Tensor:
    """One-hot labels [B, c_dim]: `class_index` for all (or one per video), or a seeded random class per video."""
    c = torch.zeros([batch_size, G.c_dim])
    if G.c_dim == 0:
        return c
    if class_index is None:
        classes = [int(np.random.default_rng([check_seed(seed), b, 2]).integers(G.c_dim)) for b in range(batch_size)]
    else:
        per_video = isinstance(class_index, Sequence)
        classes = [int(i) for i in class_index] if per_video else [int(class_index)] * batch_size
        if len(classes) != batch_size:
            raise ValueError(f"{len(classes)} class indices given for {batch_size} videos")
        for index in classes:
            if not 0 <= index < G.c_dim:
                raise ValueError(f"class_index must be in 0..{G.c_dim - 1} for this model, got {index}")
    c[torch.arange(batch_size), torch.tensor(classes)] = 1
    return c


@torch.inference_mode()
def sample_content(G: Generator, seed: int, batch_size: int, truncation_psi: float = 1.0,
                   class_index: int | Sequence[int] | None = None, device: str | torch.device = "cpu"
                   ) -> torch.Tensor:
    """ws [B, num_ws, w_dim] for a seed; labels for conditional models come from `class_labels`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    param = next(G.parameters())
    z = content_latents(seed, batch_size, G.z_dim).to(param.device)
    c = class_labels(G, seed, batch_size, class_index).to(param.device)
    return G.mapping(z, c, truncation_psi=truncation_psi).to(device)


def timestamps(num_frames: int, fps: float, dataset_fps: float, start_time: float = 0.0,
               speed: float = 1.0) -> torch.Tensor:
    """Model times (dataset frames, float64 [F]) of frames shown at `fps` for playback `speed`.

    Frame k is shown at k / fps seconds and shows the model at
    t_k = (start_time + speed * k / fps) * dataset_fps; speed 0.25 is 4x slow motion.
    """
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1, got {num_frames}")
    if not fps > 0 or not dataset_fps > 0:
        raise ValueError(f"fps and dataset_fps must be positive, got {fps}, {dataset_fps}")
    if start_time < 0 or speed < 0:
        raise ValueError(f"start_time and speed must be >= 0 (model time starts at 0), got {start_time}, {speed}")
    for name, value in (("fps", fps), ("dataset_fps", dataset_fps), ("start_time", start_time), ("speed", speed)):
        if not math.isfinite(value):
            raise ValueError(f"{name} must be finite, got {value}")
    k = torch.arange(num_frames, dtype=torch.float64)
    return check_model_time((start_time + speed * k / fps) * dataset_fps)


def motion_codes(G: Generator, motion: Motion, first: int, last: int, c: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Motion codes first..last (inclusive) for every video: [B, last - first + 1, code_dim]."""
    return motion.codes(G, first, last, c)


def code_runs(left: torch.Tensor, max_gap: int = CODE_BLOCK) -> list[tuple[int, int]]:
    """Inclusive (first, last) windows of code indices covering codes j and j + 1 for every j in `left`.

    Needed indices closer than `max_gap` share a window: motions compute codes in aligned blocks of
    CODE_BLOCK anyway, so bridging such a gap costs nothing, and an ordinary timeline stays one window.
    The total length is at most (max_gap + 2) codes per frame, whatever the time span.
    """
    needed = torch.unique(torch.cat([left.reshape(-1), left.reshape(-1) + 1]))  # sorted
    if needed.numel() == 0:
        return []
    breaks = ((needed[1:] - needed[:-1]) > max_gap + 1).nonzero().squeeze(1).tolist()
    starts = [0] + [i + 1 for i in breaks]
    ends = breaks + [needed.numel() - 1]
    return [(int(needed[a]), int(needed[b])) for a, b in zip(starts, ends)]


def motion_window(G: Generator, motion: Motion, t: torch.Tensor, c: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """v(t) [B*F, v_dim] for timeline times t [B, F], computing only the codes these timestamps need.

    The work grows with the number of frames, not with the time they span: codes are computed in
    windows around the requested times (`code_runs`), each frame reading its window.
    """
    enc = G.synthesis.motion_encoder
    device = next(G.parameters()).device
    t = check_model_time(torch.as_tensor(t, dtype=torch.float64))
    t = motion.model_time(G, t)
    b, f = t.shape
    left = torch.div(t, enc.distance, rounding_mode="floor").long()  # as motion_vectors computes it
    runs = code_runs(left)
    if len(runs) == 1:  # an ordinary timeline: one window, exactly as computed before windows existed
        first, last = runs[0]
        return enc.motion_vectors(_codes_for(G, motion, first, last, c, b), t.to(device), code_offset=first)
    # Several windows: their codes side by side, each frame pointed at its left code's place.
    windows, index, place = [], torch.empty_like(left), 0
    for first, last in runs:
        windows.append(_codes_for(G, motion, first, last, c, b))
        inside = (left >= first) & (left <= last)
        index[inside] = left[inside] - first + place
        place += last - first + 1
    return enc.motion_vectors(torch.cat(windows, dim=1), t.to(device), code_index=index)


def _codes_for(G: Generator, motion: Motion, first: int, last: int, c: torch.Tensor | None, b: int
               ) -> torch.Tensor:
    codes = motion_codes(G, motion, first, last, c)
    return codes.expand(b, -1, -1) if codes.shape[0] != b else codes


@torch.inference_mode()
def render_chunks(G: Generator, ws: torch.Tensor | ContentSchedule, motion: Motion, t: torch.Tensor,
                  c: torch.Tensor | None = None, chunk_size: int = 16) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first frame index, frames [B, n, C, H, W] float32, raw ~[-1, 1]) chunk by chunk.

    ws: [B or 1, num_ws, w_dim], or a ContentSchedule giving ws per frame (morphs, directions);
    motion: any `motions.Motion`; t [F] shared by all videos or [B, F] (timeline time, dataset
    frames); c [B, c_dim] for conditional models.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    b = combined_batch(content_batch(ws), motion.batch_size, "content", "motion")
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.ndim == 1:
        t = t.unsqueeze(0).expand(b, -1)
    if t.ndim != 2 or t.shape[0] != b or t.shape[1] < 1:
        raise ValueError(f"t must be [F] or [B={b}, F] with F >= 1, got {list(t.shape)}")
    device = next(G.parameters()).device
    if c is not None:
        c = c.to(device).expand(b, -1)
    num_frames = t.shape[1]
    for start in range(0, num_frames, chunk_size):
        tc = t[:, start:start + chunk_size]
        n = tc.shape[1]
        motion_v = motion_window(G, motion, tc, c)
        if isinstance(ws, torch.Tensor):
            frame_ws = ws.to(device).expand(b, -1, -1)  # one w per video, shared by its n frames
        else:
            frame_ws = ws.ws_for(torch.arange(start, start + n)).to(device).expand(b, -1, -1, -1).flatten(0, 1)
        frames = G.synthesis.frames(frame_ws, motion_v)
        yield start, frames.reshape(b, n, *frames.shape[1:]).float()


def render(G: Generator, ws: torch.Tensor | ContentSchedule, motion: Motion, t: torch.Tensor,
           c: torch.Tensor | None = None, chunk_size: int = 16) -> torch.Tensor:
    """All frames at once, [B, F, C, H, W] on the CPU (for short clips; stream long ones)."""
    return torch.cat([f.cpu() for _, f in render_chunks(G, ws, motion, t, c, chunk_size)], dim=1)


def to_uint8(frames: torch.Tensor) -> torch.Tensor:
    """Raw [..., C, H, W] in ~[-1, 1] -> uint8 [..., H, W, C] (rounded, clamped)."""
    x = (frames.float() * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.movedim(-3, -1)


def to_unit(frames: torch.Tensor) -> torch.Tensor:
    """Raw [..., C, H, W] -> float [..., H, W, C] in 0..1 (ComfyUI's IMAGE layout)."""
    return ((frames.float() + 1) / 2).clamp(0, 1).movedim(-3, -1)


def grid(frames: torch.Tensor, columns: int | None = None) -> torch.Tensor:
    """[B, F, C, H, W] -> [F, C, rows*H, cols*W], videos laid out row-major (empty cells black)."""
    b, f, ch, h, w = frames.shape
    columns = columns or math.ceil(math.sqrt(b))
    rows = math.ceil(b / columns)
    pad = rows * columns - b
    if pad:
        frames = torch.cat([frames, frames.new_full((pad, f, ch, h, w), -1.0)])
    return rearrange(frames, "(rows cols) f ch h w -> f ch (rows h) (cols w)", rows=rows)
