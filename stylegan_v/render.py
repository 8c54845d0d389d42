"""Streaming rendering: (content, seeded motion, timestamps) -> frames in chunks.

Memory is bounded by the chunk: each chunk draws only the motion noise its
timestamps need, so a ten-minute video costs no more than ten frames.

Seeded noise is drawn in fixed blocks, each from its own counter-based stream
keyed by (seed, video, block). A vector therefore depends only on its index,
which makes motion prefix-stable (a longer timeline never changes earlier
frames) and independent of batch size and chunking.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from .generator import Generator

NOISE_BLOCK = 64
CODE_BLOCK = 32


def _normal(key: list[int], shape: tuple[int, ...]) -> np.ndarray:
    return np.random.default_rng(key).standard_normal(shape, dtype=np.float32)


def _check_seed(seed: int) -> int:
    seed = int(seed)
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    return seed


def motion_noise(seed: int, video_index: int, start: int, stop: int, dim: int) -> torch.Tensor:
    """Noise vectors start..stop-1 of video `video_index`'s motion: [stop - start, dim]."""
    seed = _check_seed(seed)
    if not 0 <= start <= stop:
        raise ValueError(f"need 0 <= start <= stop, got {start}, {stop}")
    first, last = start // NOISE_BLOCK, max(start, stop - 1) // NOISE_BLOCK
    blocks = [_normal([seed, video_index, 1, block], (NOISE_BLOCK, dim)) for block in range(first, last + 1)]
    offset = first * NOISE_BLOCK
    return torch.from_numpy(np.concatenate(blocks)[start - offset: stop - offset])


def content_latents(seed: int, batch_size: int, dim: int) -> torch.Tensor:
    """z for videos 0..batch_size-1 of a seed; video b's z does not depend on batch_size."""
    seed = _check_seed(seed)
    return torch.from_numpy(np.stack([_normal([seed, b, 0], (dim,)) for b in range(batch_size)]))


def class_labels(G: Generator, seed: int, batch_size: int, class_index: int | None = None) -> torch.Tensor:
    """One-hot labels [B, c_dim]: `class_index` for all, or a seeded random class per video."""
    c = torch.zeros([batch_size, G.c_dim])
    if G.c_dim == 0:
        return c
    if class_index is None:
        classes = [int(np.random.default_rng([_check_seed(seed), b, 2]).integers(G.c_dim)) for b in range(batch_size)]
    else:
        if not 0 <= class_index < G.c_dim:
            raise ValueError(f"class_index must be in 0..{G.c_dim - 1} for this model, got {class_index}")
        classes = [class_index] * batch_size
    c[torch.arange(batch_size), torch.tensor(classes)] = 1
    return c


@torch.inference_mode()
def sample_content(G: Generator, seed: int, batch_size: int, truncation_psi: float = 1.0,
                   class_index: int | None = None, device: str | torch.device = "cpu") -> torch.Tensor:
    """ws [B, num_ws, w_dim] for a seed; labels for conditional models come from `class_labels`."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    param = next(G.parameters())
    z = content_latents(seed, batch_size, G.z_dim).to(param.device)
    c = class_labels(G, seed, batch_size, class_index).to(param.device)
    return G.mapping(z, c, truncation_psi=truncation_psi).to(device)


@dataclass(frozen=True)
class MotionSeed:
    """Seeded motion for `batch_size` videos; noise is generated lazily per window."""

    seed: int
    batch_size: int = 1

    def __post_init__(self) -> None:
        _check_seed(self.seed)
        if self.batch_size < 1:
            raise ValueError(f"motion batch_size must be >= 1, got {self.batch_size}")

    def noise(self, start: int, stop: int, dim: int) -> torch.Tensor:
        """[batch_size, stop - start, dim]."""
        return torch.stack([motion_noise(self.seed, b, start, stop, dim) for b in range(self.batch_size)])


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
    k = torch.arange(num_frames, dtype=torch.float64)
    return (start_time + speed * k / fps) * dataset_fps


def _broadcast(ws: torch.Tensor, motion: MotionSeed) -> int:
    b = max(ws.shape[0], motion.batch_size)
    if ws.shape[0] not in (1, b) or motion.batch_size not in (1, b):
        raise ValueError(f"content batch ({ws.shape[0]}) and motion batch ({motion.batch_size}) must be equal, "
                         "or one of them 1")
    return b


def motion_codes(G: Generator, motion: MotionSeed, first: int, last: int, c: torch.Tensor | None = None
                 ) -> torch.Tensor:
    """Motion codes first..last (inclusive) for every video: [B, last - first + 1, code_dim].

    Codes are computed in fixed, aligned blocks of CODE_BLOCK, each from the same slice
    of noise whatever window asks for it, so a code's value never depends on the chunking.
    """
    enc = G.synthesis.motion_encoder
    device = next(G.parameters()).device
    if G.c_dim > 0 and c is None:
        raise ValueError("this model is class-conditional: pass class labels c (see class_labels)")
    blocks = []
    for block in range(first // CODE_BLOCK, last // CODE_BLOCK + 1):
        start = block * CODE_BLOCK
        noise = motion.noise(start, start + CODE_BLOCK + enc.receptive_field - 1, enc.z_dim).to(device)
        labels = None if c is None else c.to(device)[: noise.shape[0]]
        if labels is not None and labels.shape[0] != noise.shape[0]:
            labels = labels[:1].expand(noise.shape[0], -1)
        blocks.append(enc.codes(noise, labels))
    codes = torch.cat(blocks, dim=1)
    offset = (first // CODE_BLOCK) * CODE_BLOCK
    return codes[:, first - offset: last - offset + 1]


def motion_window(G: Generator, motion: MotionSeed, t: torch.Tensor, c: torch.Tensor | None = None
                  ) -> torch.Tensor:
    """v(t) [B*F, v_dim] for t [B, F], computing only the codes these timestamps need."""
    enc = G.synthesis.motion_encoder
    device = next(G.parameters()).device
    if not bool(torch.isfinite(t).all()) or float(t.min()) < 0:
        raise ValueError("timestamps must be finite and >= 0")
    first = int(math.floor(float(t.min()) / enc.distance))
    last = int(math.floor(float(t.max()) / enc.distance)) + 1
    codes = motion_codes(G, motion, first, last, c)
    if codes.shape[0] != t.shape[0]:
        codes = codes.expand(t.shape[0], -1, -1)
    return enc.motion_vectors(codes, t.to(device), code_offset=first)


@torch.inference_mode()
def render_chunks(G: Generator, ws: torch.Tensor, motion: MotionSeed, t: torch.Tensor, c: torch.Tensor | None = None,
                  chunk_size: int = 16) -> Iterator[tuple[int, torch.Tensor]]:
    """Yield (first frame index, frames [B, n, C, H, W] float32, raw ~[-1, 1]) chunk by chunk.

    ws [B or 1, num_ws, w_dim]; t [F] shared by all videos or [B, F]; c [B, c_dim] for conditional models.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    b = _broadcast(ws, motion)
    t = torch.as_tensor(t, dtype=torch.float64)
    if t.ndim == 1:
        t = t.unsqueeze(0).expand(b, -1)
    if t.ndim != 2 or t.shape[0] != b or t.shape[1] < 1:
        raise ValueError(f"t must be [F] or [B={b}, F] with F >= 1, got {list(t.shape)}")
    device = next(G.parameters()).device
    ws = ws.to(device).expand(b, -1, -1)
    if c is not None:
        c = c.to(device).expand(b, -1)
    num_frames = t.shape[1]
    for start in range(0, num_frames, chunk_size):
        tc = t[:, start:start + chunk_size]
        n = tc.shape[1]
        motion_v = motion_window(G, motion, tc, c)
        frames = G.synthesis.frames(ws.repeat_interleave(n, dim=0), motion_v)
        yield start, frames.reshape(b, n, *frames.shape[1:]).float()


def render(G: Generator, ws: torch.Tensor, motion: MotionSeed, t: torch.Tensor, c: torch.Tensor | None = None,
           chunk_size: int = 16) -> torch.Tensor:
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
    frames = frames.reshape(rows, columns, f, ch, h, w)
    return frames.permute(2, 3, 0, 4, 1, 5).reshape(f, ch, rows * h, columns * w)
