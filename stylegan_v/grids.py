"""Content x motion grids (the paper's decomposition figures): every content paired with every motion.

Combination i = r * B + b pairs content b with motion r, so tiling the batch B videos wide
(`render.grid(frames, columns=B)`) puts one motion per row and one content per column.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from . import content as edits
from .content import ContentSchedule
from .generator import Generator
from .motions import Motion


def grid_indices(num_contents: int, num_motions: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(content index, motion index) of every combination, row-major with rows = motions."""
    if num_contents < 1 or num_motions < 1:
        raise ValueError(f"a grid needs at least one content and one motion, got {num_contents}, {num_motions}")
    combos = torch.arange(num_contents * num_motions)
    return combos % num_contents, combos // num_contents


def _check_indices(indices: tuple[int, ...], size: int, what: str) -> None:
    if not indices:
        raise ValueError(f"select at least one {what}")
    if min(indices) < 0 or max(indices) >= size:
        raise ValueError(f"{what} indices must be in 0..{size - 1}, got {min(indices)}..{max(indices)}")


@dataclass(frozen=True)
class GatheredMotion:
    """Videos `indices` of a motion, in that order (indices may repeat)."""

    base: Motion
    indices: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_indices(self.indices, self.base.batch_size, "motion")

    @property
    def batch_size(self) -> int:
        return len(self.indices)

    def codes(self, G: Generator, first: int, last: int, c: torch.Tensor | None = None) -> torch.Tensor:
        index = torch.tensor(self.indices)
        size = self.base.batch_size
        if G.c_dim == 0 or c is None:
            return self.base.codes(G, first, last, c).expand(size, -1, -1)[index]
        # Conditional models: each combination's codes follow its own label, so the base motion is
        # evaluated once per distinct label and every combination picks its row from the matching pass.
        c = c.expand(len(self.indices), -1)
        labels, which = torch.unique(c.cpu(), dim=0, return_inverse=True)
        out = None
        for k, label in enumerate(labels):
            codes = self.base.codes(G, first, last, label.to(c.device).expand(size, -1)).expand(size, -1, -1)
            if out is None:
                out = codes.new_empty((len(self.indices), *codes.shape[1:]))
            rows = (which == k).nonzero().squeeze(1)
            out[rows.to(out.device)] = codes[index[rows]]
        return out

    def model_time(self, G: Generator, t: torch.Tensor) -> torch.Tensor:
        return self.base.model_time(G, t)


@dataclass(frozen=True, eq=False)
class GatheredContent:
    """Videos `indices` of a content schedule (morph, direction), in that order."""

    base: ContentSchedule
    indices: tuple[int, ...]

    def __post_init__(self) -> None:
        _check_indices(self.indices, self.base.batch_size, "content")

    @property
    def batch_size(self) -> int:
        return len(self.indices)

    def ws_for(self, frames: torch.Tensor) -> torch.Tensor:
        ws = self.base.ws_for(frames)
        return ws.expand(self.base.batch_size, *ws.shape[1:])[torch.tensor(self.indices, device=ws.device)]


def gather_content(content: torch.Tensor | ContentSchedule, indices: torch.Tensor | list[int]
                   ) -> torch.Tensor | ContentSchedule:
    indices = tuple(int(i) for i in torch.as_tensor(indices).tolist())
    if isinstance(content, torch.Tensor):
        _check_indices(indices, content.shape[0], "content")
        return content[torch.tensor(indices, device=content.device)]
    return GatheredContent(content, indices)


def content_motion_grid(content: torch.Tensor | ContentSchedule, motion: Motion
                        ) -> tuple[torch.Tensor | ContentSchedule, Motion, int]:
    """(contents, motions, columns) of the B x R grid: render the pair and tile it `columns` = B wide."""
    num_contents = edits.batch_size(content)
    content_index, motion_index = grid_indices(num_contents, motion.batch_size)
    return gather_content(content, content_index), GatheredMotion(motion, tuple(motion_index.tolist())), \
        num_contents
