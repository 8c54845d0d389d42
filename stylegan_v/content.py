"""Content edits: per-frame w schedules (morphs, directions with keyframed strength) and style mixing.

A content is either a ws tensor [B, num_ws, w_dim] (the same w for every frame)
or a ContentSchedule whose `ws_for(frames)` gives [B, n, num_ws, w_dim] for the
requested output frame indices; the renderer asks chunk by chunk.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

from .batching import combined_batch
from .curves import Curve


@runtime_checkable
class ContentSchedule(Protocol):
    batch_size: int

    def ws_for(self, frames: torch.Tensor) -> torch.Tensor: ...


def ws_for(content: torch.Tensor | ContentSchedule, frames: torch.Tensor) -> torch.Tensor:
    if isinstance(content, torch.Tensor):
        return content.unsqueeze(1).expand(-1, frames.numel(), -1, -1)
    return content.ws_for(frames)


def batch_size(content: torch.Tensor | ContentSchedule) -> int:
    return content.shape[0] if isinstance(content, torch.Tensor) else content.batch_size


def per_frame(curve: Curve, num_frames: int, fps: float) -> torch.Tensor:
    """Sample a curve keyed in output seconds at every frame: float64 [num_frames]."""
    if num_frames < 1 or not fps > 0:
        raise ValueError(f"need num_frames >= 1 and fps > 0, got {num_frames}, {fps}")
    return curve(torch.arange(num_frames, dtype=torch.float64) / fps)


def _frame_values(values: torch.Tensor, frames: torch.Tensor) -> torch.Tensor:
    # Frames past the end of the schedule hold its last value.
    return values[frames.clamp(max=values.numel() - 1)]


def _same_latents(a: torch.Tensor, b: torch.Tensor, what: str) -> None:
    """Latents [B, ..., num_ws, w_dim] of one model whose batches can be paired."""
    if a.shape[1:] != b.shape[1:]:
        raise ValueError(f"{what}: latents of shapes {list(a.shape)} and {list(b.shape)} do not match "
                         "(different models?)")
    combined_batch(a.shape[0], b.shape[0], f"{what}: first content", "second content")


@dataclass(frozen=True, eq=False)
class Morph:
    """From `start` to `end` with per-frame weights (0 = start, 1 = end, exactly)."""

    start: torch.Tensor | ContentSchedule
    end: torch.Tensor | ContentSchedule
    weights: torch.Tensor  # float64 [F]

    def __post_init__(self) -> None:
        if self.weights.ndim != 1 or self.weights.numel() < 1:
            raise ValueError("morph weights must be a non-empty 1-D tensor")
        _ = self.batch_size  # endpoints that cannot be paired are refused here, not at render time

    @property
    def batch_size(self) -> int:
        return combined_batch(batch_size(self.start), batch_size(self.end), "morph start", "morph end")

    def ws_for(self, frames: torch.Tensor) -> torch.Tensor:
        a, b = ws_for(self.start, frames), ws_for(self.end, frames)
        _same_latents(a, b, "morph")
        w = _frame_values(self.weights, frames).to(a.dtype).reshape(1, -1, 1, 1)
        a, b = torch.broadcast_tensors(a, b)
        # Select the endpoints outright so that weights 0 and 1 give the inputs bit for bit.
        return torch.where(w == 0, a, torch.where(w == 1, b, torch.lerp(a, b, w.expand_as(a))))


def check_direction(direction: torch.Tensor, latent_shape: tuple[int, ...]) -> None:
    """Refuse a direction that does not fit latents of shape (num_ws, w_dim) (a layer axis of 1 is shared)."""
    num_ws, w_dim = latent_shape
    shape = tuple(direction.shape)
    if not (1 <= len(shape) <= 3 and shape[-1] == w_dim and (len(shape) == 1 or shape[-2] in (1, num_ws))):
        raise ValueError(f"the direction has shape {list(shape)}, which does not fit latents [{num_ws}, {w_dim}] "
                         f"(expected [{w_dim}] or [{num_ws}, {w_dim}])")


@dataclass(frozen=True, eq=False)
class Direction:
    """base + strength(frame) · direction; direction is [w_dim], [num_ws, w_dim] or [B, num_ws, w_dim]."""

    base: torch.Tensor | ContentSchedule
    direction: torch.Tensor
    strengths: torch.Tensor  # float64 [F]

    def __post_init__(self) -> None:
        if self.strengths.ndim != 1 or self.strengths.numel() < 1:
            raise ValueError("direction strengths must be a non-empty 1-D tensor")
        if isinstance(self.base, torch.Tensor):
            check_direction(self.direction, tuple(self.base.shape[1:]))
        _ = self.batch_size  # a batch of directions that cannot be paired with the contents is refused here

    @property
    def batch_size(self) -> int:
        if self.direction.ndim < 3:
            return batch_size(self.base)
        return combined_batch(batch_size(self.base), self.direction.shape[0], "content", "direction")

    def ws_for(self, frames: torch.Tensor) -> torch.Tensor:
        ws = ws_for(self.base, frames)
        check_direction(self.direction, tuple(ws.shape[2:]))
        d = self.direction.to(ws.device, ws.dtype)
        # To [B or 1, 1 (frames), num_ws or 1, w_dim].
        d = d.reshape(1, 1, 1, -1) if d.ndim == 1 else d.reshape(1, 1, *d.shape) if d.ndim == 2 else d.unsqueeze(1)
        s = _frame_values(self.strengths, frames).to(ws.device, ws.dtype).reshape(1, -1, 1, 1)
        return ws + s * d


def style_mix(ws_a: torch.Tensor, ws_b: torch.Tensor, first_layer: int, last_layer: int) -> torch.Tensor:
    """`ws_a` with layers first..last (inclusive) taken from `ws_b` (coarse layers = pose/shape, fine = colour)."""
    _same_latents(ws_a, ws_b, "style mixing")
    num_ws = ws_a.shape[1]
    if not 0 <= first_layer <= last_layer < num_ws:
        raise ValueError(f"layer range must satisfy 0 <= first <= last < {num_ws}, got {first_layer}..{last_layer}")
    a, b = torch.broadcast_tensors(ws_a, ws_b)
    mixed = a.clone()
    mixed[:, first_layer:last_layer + 1] = b[:, first_layer:last_layer + 1]
    return mixed


def direction_between(ws_from: torch.Tensor, ws_to: torch.Tensor) -> torch.Tensor:
    """The latent direction [num_ws, w_dim] leading from one content to another (batch-averaged)."""
    _same_latents(ws_from, ws_to, "direction")
    return (ws_to - ws_from).mean(dim=0)
