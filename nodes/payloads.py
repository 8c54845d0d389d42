"""The custom types that flow between this pack's nodes, and what each one carries.

ComfyUI passes these Python objects along links unchanged (they are never serialised), and
caches them with the node outputs, so they are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from comfy_api.latest import io

ModelType = io.Custom("STYLEGAN_V_MODEL")
ContentType = io.Custom("STYLEGAN_V_CONTENT")
MotionType = io.Custom("STYLEGAN_V_MOTION")
TimelineType = io.Custom("STYLEGAN_V_TIMELINE")


@dataclass(frozen=True)
class Content:
    """What each video shows: its w latents, and the class label for conditional models."""

    ws: torch.Tensor  # [B, num_ws, w_dim], on the intermediate device
    c: torch.Tensor | None  # [B, c_dim] one-hot, None for unconditional models
    model_fingerprint: str  # content hash of the checkpoint the latents were sampled from

    @property
    def batch_size(self) -> int:
        return self.ws.shape[0]


@dataclass(frozen=True)
class Timeline:
    """Which instants to render, in model time (dataset frames), and at what output rate."""

    t: torch.Tensor  # float64 [F]
    fps: float
    dataset_fps: float
    start_time: float
    speed: float

    @property
    def num_frames(self) -> int:
        return self.t.shape[0]
