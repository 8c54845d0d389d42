"""The custom types that flow between this pack's nodes, and what each one carries.

ComfyUI passes these Python objects along links unchanged (they are never serialised), and
caches them with the node outputs, so they are immutable.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from stylegan_v import content as edits
from stylegan_v.content import ContentSchedule

from .comfy_api_compat import io

ModelType = io.Custom("STYLEGAN_V_MODEL")
ContentType = io.Custom("STYLEGAN_V_CONTENT")
MotionType = io.Custom("STYLEGAN_V_MOTION")
TimelineType = io.Custom("STYLEGAN_V_TIMELINE")


@dataclass(frozen=True)
class Content:
    """What each video shows: its w latents, and the class label for conditional models."""

    # [B, num_ws, w_dim] on the intermediate device, or a stylegan_v.content.ContentSchedule
    # (ws changing over the timeline: morphs, directions with keyframed strength)
    ws: torch.Tensor | ContentSchedule
    c: torch.Tensor | None  # [B, c_dim] one-hot, None for unconditional models

    @property
    def batch_size(self) -> int:
        return edits.batch_size(self.ws)

    @property
    def latent_shape(self) -> tuple[int, int]:
        """(num_ws, w_dim) of the latents."""
        if isinstance(self.ws, torch.Tensor):
            return tuple(self.ws.shape[1:])
        return tuple(self.ws.ws_for(torch.zeros(1, dtype=torch.long)).shape[2:])


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
