"""What the detectors see: uint8 clips or frames from a dataset or from a generator.

Every choice is seeded, so the same dataset, generator and seed give the same
samples on any number of GPUs: work is split by sample (datasets) or by
generator batch (generators), never re-drawn per rank.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterator

import numpy as np
import torch

from stylegan_v.render import MotionSeed, content_latents, render_chunks, to_uint8
from training.dataset import FrameSampling, VideoFramesDataset
from training.metrics.protocols import Protocol


def open_dataset(path: str | os.PathLike, use_labels: bool = False) -> VideoFramesDataset:
    # Metrics pick frames themselves; one-frame sampling keeps every video (none is "too short").
    return VideoFramesDataset(path, sampling=FrameSampling(num_frames=1, mode="consecutive"),
                              max_num_frames=2**62, use_labels=use_labels)


class DatasetClips(torch.utils.data.Dataset):
    """One clip per video for FVD: `num_frames` frames every `subsample`, at a seeded offset.

    Videos shorter than the clip span are skipped and the first `limit` of the
    rest (sorted by name) are used, as in the original protocol. The original
    draws offsets unseeded; seeding them makes the real statistics reproducible
    and a dataset's FVD against itself exactly zero.
    """

    def __init__(self, dataset: VideoFramesDataset, protocol: Protocol, limit: int, seed: int):
        span = protocol.clip_span
        eligible = [v for v in range(dataset.num_videos) if dataset.frame_counts[v] >= span]
        if not eligible:
            raise ValueError(
                f"{dataset.path}: no video has the {span} frames a {protocol.name} clip needs "
                f"(longest has {int(dataset.frame_counts.max())})"
            )
        self.dataset = dataset
        self.videos = eligible[:limit]
        self.steps = np.arange(protocol.num_frames) * protocol.subsample
        self.offsets = [
            int(np.random.default_rng([seed, v]).integers(0, int(dataset.frame_counts[v]) - span + 1))
            for v in self.videos
        ]

    def __len__(self) -> int:
        return len(self.videos)

    def __getitem__(self, index: int) -> torch.Tensor:
        """uint8 [num_frames, 3, H, W]."""
        return torch.from_numpy(self.dataset.read_frames(self.videos[index], self.offsets[index] + self.steps))


class DatasetFrames(torch.utils.data.Dataset):
    """Single frames for FID: every frame, or the first `frames_per_video` of each video up to `limit`."""

    def __init__(self, dataset: VideoFramesDataset, frames_per_video: int | None = None, limit: int | None = None):
        counts = dataset.frame_counts if frames_per_video is None else np.minimum(dataset.frame_counts,
                                                                                  frames_per_video)
        self.dataset = dataset
        # Cumulative counts instead of a list of (video, frame) pairs: datasets can hold millions of frames.
        self.ends = np.cumsum(counts)
        self.length = int(self.ends[-1]) if limit is None else min(int(self.ends[-1]), limit)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> torch.Tensor:
        """uint8 [3, H, W]."""
        video = int(np.searchsorted(self.ends, index, side="right"))
        frame = index - (int(self.ends[video - 1]) if video > 0 else 0)
        return torch.from_numpy(self.dataset.read_frames(video, [frame])[0])


def dataset_batches(samples: torch.utils.data.Dataset, batch_size: int, num_workers: int,
                    rank: int = 0, world_size: int = 1) -> Iterator[torch.Tensor]:
    """Batches of this rank's share (samples rank, rank + world_size, ...)."""
    shard = torch.utils.data.Subset(samples, range(rank, len(samples), world_size))
    loader = torch.utils.data.DataLoader(shard, batch_size=batch_size, num_workers=num_workers, shuffle=False,
                                         persistent_workers=False)
    yield from loader


def generated_clips(G, num_videos: int, num_frames: int, subsample: int, seed: int, batch_size: int,
                    labels: np.ndarray | None = None, rank: int = 0, world_size: int = 1,
                    ) -> Iterator[tuple[int, torch.Tensor]]:
    """(index of the first video, uint8 clips [b, num_frames, 3, H, W]) for this rank's batches.

    Batch k renders videos k*batch_size ... with content and motion seeded by
    (seed + k) through stylegan_v.render, at t = 0, s, 2s, ... (s = subsample),
    truncation 1. Conditional generators get the labels of seeded random rows
    of `labels` (the dataset's), as the original samples them from the dataset.
    """
    if G.c_dim > 0 and (labels is None or labels.shape[1] != G.c_dim):
        got = "none" if labels is None else f"{labels.shape[1]}-d"
        raise ValueError(f"the generator is conditional (c_dim={G.c_dim}) but the dataset labels are {got}")
    device = next(G.parameters()).device
    t = torch.arange(num_frames, dtype=torch.float64) * subsample
    for k in range(rank, math.ceil(num_videos / batch_size), world_size):
        b = min(batch_size, num_videos - k * batch_size)
        z = content_latents(seed + k, b, G.z_dim).to(device)
        if G.c_dim > 0:
            rows = np.random.default_rng([seed, k, 1]).integers(0, len(labels), size=b)
            c = torch.from_numpy(labels[rows]).to(device)
        else:
            c = torch.zeros([b, 0], device=device)
        with torch.inference_mode():
            ws = G.mapping(z, c, truncation_psi=1.0)
        chunks = [frames for _, frames in render_chunks(G, ws, MotionSeed(seed + k, b), t,
                                                        c if G.c_dim > 0 else None, chunk_size=16)]
        # to_uint8 is channels-last; the detectors take [.., 3, H, W].
        yield k * batch_size, to_uint8(torch.cat(chunks, dim=1)).movedim(-1, -3)
