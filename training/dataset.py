"""Video-frames dataset and StyleGAN-V sparse frame sampling: a few frames per clip, at their times.

Layout: a directory or zip with one folder per video holding its frames
(lexicographic order), optional `dataset.json` labels. Each draw returns a few
frames of one video: uint8 [F, C, H, W], its label and the integer frame times.

Determinism: every random choice comes from a numpy Generator passed in;
`VideoClipStream` seeds one per position of its shuffled item sequence, so a
run is reproducible whatever the number of DataLoader workers, and
data-parallel ranks read disjoint positions.

    python -m training.dataset PATH    # prints a summary of a prepared dataset
"""

from __future__ import annotations

import json
import os
import sys
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from training.image_codec import decode_image
from training.layout import LayoutIndex, index_directory, index_zip, is_zip_path

SAMPLING_MODES = ("random", "uniform", "consecutive")


@dataclass(frozen=True)
class FrameSampling:
    """How the frames of one clip are chosen. Defaults are the paper's (3 random frames within 32)."""

    num_frames: int = 3                 # F_D: frames per clip
    mode: str = "random"                # "random" | "uniform" | "consecutive"
    max_dist: int = 32                  # largest first-to-last span (random) / gap (uniform)
    total_dists: tuple[int, ...] = field(default_factory=lambda: tuple(2**i for i in range(12)))

    def __post_init__(self):
        if self.num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.mode not in SAMPLING_MODES:
            raise ValueError(f"sampling mode must be one of {SAMPLING_MODES}, got {self.mode!r}")
        if self.max_dist < 1:
            raise ValueError(f"max_dist must be >= 1, got {self.max_dist}")
        if self.mode == "random" and self.num_frames > 1 and not self._spans(10**9):
            raise ValueError(
                f"no span in total_dists {self.total_dists} lies in [num_frames-1, max_dist] = "
                f"[{self.num_frames - 1}, {self.max_dist}]"
            )

    def _spans(self, video_len: int) -> list[int]:
        upper = min(video_len - 1, self.max_dist)
        return sorted(s for s in set(self.total_dists) if self.num_frames - 1 <= s <= upper)

    def min_video_len(self) -> int:
        """Shortest video this sampling can draw from; shorter ones are skipped."""
        if self.mode == "random" and self.num_frames > 1:
            return self._spans(10**9)[0] + 1
        return self.num_frames


def sample_times(rng: np.random.Generator, video_len: int, sampling: FrameSampling, fractional: bool = False) -> np.ndarray:
    """Frame times for one clip of a video with `video_len` usable frames.

    Integer offsets (int64) for real clips; with `fractional` the start offset is
    a real number (float64), as for generated clips, while the gaps stay integers.
    Times are sorted and lie in [0, video_len - 1].
    """
    num_frames = sampling.num_frames
    if video_len < sampling.min_video_len():
        raise ValueError(f"video of {video_len} frames is too short for {sampling} (needs {sampling.min_video_len()})")

    def offset(free: int) -> float | int:
        # Real: integer in [0, free]; fake: real in [0, free).
        return float(rng.uniform(0.0, free)) if fractional else int(rng.integers(0, free + 1))

    if num_frames == 1:
        gaps = np.zeros(1, np.int64)
    elif sampling.mode == "random":
        spans = sampling._spans(video_len)
        span = spans[int(rng.integers(len(spans)))]
        # Both ends of the span plus distinct interior frames.
        interior = rng.choice(np.arange(1, span), size=num_frames - 2, replace=False)
        gaps = np.sort(np.concatenate([[0, span], interior]).astype(np.int64))
    elif sampling.mode == "uniform":
        step = int(rng.integers(1, max(1, min(sampling.max_dist, video_len // num_frames)) + 1))
        gaps = np.arange(num_frames, dtype=np.int64) * step
    else:  # consecutive
        gaps = np.arange(num_frames, dtype=np.int64)
    start = offset(video_len - 1 - int(gaps[-1]))
    return (gaps + start) if not fractional else (gaps.astype(np.float64) + start)


def sample_fake_times(
    rng: np.random.Generator, video_lengths: np.ndarray, batch_size: int, sampling: FrameSampling
) -> tuple[np.ndarray, np.ndarray]:
    """Timestamps for a batch of generated videos, drawn like the real clips' (the original's rule).

    Each fake video borrows a random dataset item: its usable length bounds the
    times, and the caller uses the returned indices to fetch labels
    (`dataset.get_labels(indices)`). Returns (indices int64 [B], times float64 [B, F]).
    """
    video_lengths = np.asarray(video_lengths)
    if len(video_lengths) == 0:
        raise ValueError("sample_fake_times needs at least one video length")
    indices = rng.integers(0, len(video_lengths), size=batch_size).astype(np.int64)
    times = np.stack([sample_times(rng, int(video_lengths[i]), sampling, fractional=True) for i in indices])
    return indices, times.reshape(batch_size, sampling.num_frames)


def real_frames_to_model(frames: torch.Tensor) -> torch.Tensor:
    """uint8 [B, F, C, H, W] -> float32 [B*F, C, H, W] in [-1, 1] (x / 127.5 - 1), video-major."""
    if frames.ndim != 5 or frames.dtype != torch.uint8:
        raise ValueError(f"expected uint8 [B, F, C, H, W], got {frames.dtype} {tuple(frames.shape)}")
    return frames.flatten(0, 1).to(torch.float32) / 127.5 - 1


class VideoFramesDataset(torch.utils.data.Dataset):
    """Random-access reader of the video-frames layout.

    Items are videos (doubled with x-flipped copies when `mirror`). Videos too
    short for `sampling` are skipped with a warning instead of failing later.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        sampling: FrameSampling = FrameSampling(),
        max_num_frames: int = 1024,
        mirror: bool = False,
        use_labels: bool = False,
        resolution: int | None = None,
        seed: int = 0,
    ):
        self.path = str(path)
        self.sampling = sampling
        self.max_num_frames = int(max_num_frames)
        if self.max_num_frames < sampling.min_video_len():
            raise ValueError(f"max_num_frames={max_num_frames} is below the {sampling.min_video_len()} frames a clip needs")
        self.mirror = bool(mirror)
        self._zipfile: zipfile.ZipFile | None = None
        self._zip_pid = -1
        self._rng = np.random.default_rng(seed)  # only for plain __getitem__ use
        if not os.path.exists(self.path):
            raise FileNotFoundError(f"dataset not found: {self.path}")
        if os.path.isdir(self.path):
            self._is_zip = False
            index = index_directory(Path(self.path))
        elif is_zip_path(self.path):
            self._is_zip = True
            try:
                index = index_zip(self._zip().namelist(), self.path)
            except zipfile.BadZipFile as error:
                raise ValueError(f"{self.path}: not a readable zip ({error})") from error
        else:
            raise ValueError(f"{self.path}: a dataset is a directory or a .zip file")
        if not index.videos:
            raise ValueError(f"{self.path}: no video folders with frames found (layout: root/video/frame.png)")
        self._keep(index)
        self._info = self._load_info()
        fps = self._info.get("fps")
        self.fps: float | None = float(fps) if isinstance(fps, (int, float)) and fps > 0 else None
        self._labels = self._load_labels() if use_labels else np.zeros((len(self.video_names), 0), np.float32)

        first = self._read_frame(self._frames[0][0])
        self.num_channels = first.shape[0]
        self.height, self.width = first.shape[1:]
        if resolution is not None and (self.height, self.width) != (resolution, resolution):
            raise ValueError(f"{self.path}: frames are {self.width}x{self.height}, expected {resolution}x{resolution}")

    def _keep(self, index: LayoutIndex) -> None:
        need = self.sampling.min_video_len()
        keep = [i for i, frames in enumerate(index.frames) if len(frames) >= need]
        skipped = [video for video, frames in zip(index.videos, index.frames) if len(frames) < need]
        if skipped:
            shown = ", ".join(skipped[:5]) + (" ..." if len(skipped) > 5 else "")
            warnings.warn(f"{self.path}: skipping {len(skipped)} video(s) shorter than {need} frames: {shown}", stacklevel=3)
        if not keep:
            raise ValueError(f"{self.path}: every video is shorter than the {need} frames a clip needs")
        self.video_names = [index.videos[i] for i in keep]
        self._frames = [index.frames[i] for i in keep]
        self._labels_entry = index.labels_entry
        self.num_videos = len(keep)
        self.frame_counts = np.array([len(f) for f in self._frames], np.int64)

    # ---- storage -------------------------------------------------------------------

    def _zip(self) -> zipfile.ZipFile:
        # One handle per process: a handle inherited through fork shares its file offset
        # with the parent, and interleaved reads then return corrupt data.
        if self._zipfile is None or self._zip_pid != os.getpid():
            self._zipfile = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zipfile

    def _read_bytes(self, entry: str) -> bytes:
        if self._is_zip:
            return self._zip().read(entry)
        with open(os.path.join(self.path, entry), "rb") as f:
            return f.read()

    def _read_frame(self, entry: str) -> np.ndarray:
        image = decode_image(self._read_bytes(entry), name=f"{self.path}/{entry}")
        return image.transpose(2, 0, 1)  # HWC -> CHW

    def __getstate__(self):
        # Each DataLoader worker opens its own zip handle.
        return dict(self.__dict__, _zipfile=None)

    def close(self) -> None:
        if self._zipfile is not None:
            self._zipfile.close()
            self._zipfile = None

    # ---- labels --------------------------------------------------------------------

    def _load_info(self) -> dict:
        if self._labels_entry is None:
            return {}
        try:
            info = json.loads(self._read_bytes(self._labels_entry))
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ValueError(f"{self.path}/{self._labels_entry}: not valid JSON ({error})") from error
        if not isinstance(info, dict):
            raise ValueError(f"{self.path}/{self._labels_entry}: expected a JSON object")
        return info

    def _load_labels(self) -> np.ndarray:
        if self._labels_entry is None:
            raise ValueError(f"{self.path}: labels requested but the dataset has no dataset.json")
        raw = self._info.get("labels")
        if raw is None:
            raise ValueError(f"{self.path}/{self._labels_entry}: 'labels' is missing or null")
        pairs = raw.items() if isinstance(raw, dict) else raw
        per_video: dict[str, object] = {}
        for key, label in pairs:
            # Keys name a frame ("video/frame.png", maybe under a root folder) or the video itself.
            parts = str(key).replace("\\", "/").strip("/").split("/")
            video = parts[-2] if len(parts) >= 2 else parts[0]
            if video in per_video and per_video[video] != label:
                raise ValueError(f"{self.path}: frames of video {video!r} carry different labels")
            per_video[video] = label
        missing = [v for v in self.video_names if v not in per_video]
        if missing:
            raise ValueError(f"{self.path}: no label for video(s) {', '.join(missing[:5])}")
        values = [per_video[v] for v in self.video_names]
        if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            classes = np.array(values, np.int64)
            if classes.min() < 0:
                raise ValueError(f"{self.path}: class labels must be >= 0")
            return np.eye(int(classes.max()) + 1, dtype=np.float32)[classes]
        try:
            vectors = np.array([np.atleast_1d(np.asarray(v, np.float32)) for v in values])
        except (ValueError, TypeError) as error:
            raise ValueError(f"{self.path}: labels must be ints or equal-length float lists ({error})") from error
        if vectors.ndim != 2:
            raise ValueError(f"{self.path}: float labels must be equal-length lists")
        return vectors

    @property
    def label_dim(self) -> int:
        return self._labels.shape[1]

    def get_labels(self, indices) -> np.ndarray:
        """float32 [len(indices), label_dim] for item indices (mirrored items share labels)."""
        return self._labels[np.asarray(indices, np.int64) % self.num_videos]

    # ---- items ---------------------------------------------------------------------

    def __len__(self) -> int:
        return self.num_videos * (2 if self.mirror else 1)

    @property
    def resolution(self) -> int:
        return self.height

    @property
    def item_lengths(self) -> np.ndarray:
        """Usable length of every item (capped at max_num_frames), for sample_fake_times."""
        lengths = np.minimum(self.frame_counts, self.max_num_frames)
        return np.concatenate([lengths, lengths]) if self.mirror else lengths

    def read_frames(self, video: int, frame_indices) -> np.ndarray:
        """uint8 [len(frame_indices), C, H, W] from video number `video` (no mirroring)."""
        frames = [self._read_frame(self._frames[video][int(i)]) for i in frame_indices]
        for i, frame in zip(frame_indices, frames):
            if frame.shape != (self.num_channels, self.height, self.width):
                raise ValueError(
                    f"{self.path}/{self._frames[video][int(i)]}: frame is {frame.shape[2]}x{frame.shape[1]}, "
                    f"the dataset is {self.width}x{self.height}"
                )
        return np.stack(frames)

    def get_clip(self, index: int, rng: np.random.Generator) -> dict:
        """One training clip of item `index`: frames, label, times, video_len."""
        if not 0 <= index < len(self):
            raise IndexError(f"item {index} out of range for a dataset of {len(self)}")
        video = index % self.num_videos
        total = int(self.frame_counts[video])
        window = min(total, self.max_num_frames)
        start = int(rng.integers(0, total - window + 1)) if total > window else 0
        times = sample_times(rng, window, self.sampling)
        frames = self.read_frames(video, times + start)
        if index >= self.num_videos:
            frames = np.ascontiguousarray(frames[..., ::-1])
        return {
            "frames": frames,
            "label": self._labels[video],
            "times": times.astype(np.int64),
            "video_len": window,
            "index": index,
        }

    def __getitem__(self, index: int) -> dict:
        # Map-style access draws frames from one internal generator: fine in a single
        # process; use VideoClipStream for reproducible multi-worker loading.
        return self.get_clip(index, self._rng)


class VideoClipStream(torch.utils.data.IterableDataset):
    """Endless shuffled clips, sharded over data-parallel ranks and DataLoader workers.

    The item order is one global sequence of per-epoch permutations (seeded by
    `seed`, shared by all ranks); rank r takes global positions r, r + world_size,
    ..., so ranks never duplicate each other within an epoch. The frames of the
    clip at global position n come from a generator seeded by (seed, n), so the
    stream a rank sees is the same whatever the number of DataLoader workers.

    Pass the DataLoader's `batch_size`: workers then take turns by whole batches,
    which is the order the DataLoader collects them in, so batches come out in
    sequence order. `start` skips that many of this rank's items (resume: the
    number of items this rank consumed). Yields torch tensors: frames uint8
    [F, C, H, W], label float32 [c_dim], times int64 [F], plus video_len, index.
    """

    def __init__(
        self,
        dataset: VideoFramesDataset,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        start: int = 0,
        batch_size: int = 1,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world_size {world_size}")
        if batch_size < 1 or start < 0:
            raise ValueError(f"batch_size must be >= 1 and start >= 0 (got {batch_size}, {start})")
        self.dataset = dataset
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.shuffle = shuffle
        self.start = start
        self.batch_size = batch_size

    def _order(self, epoch: int) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, 0x5EED, epoch]).permutation(n)

    def clip_at(self, k: int) -> dict:
        """This rank's k-th item (k counted from 0, ignoring `start`)."""
        n = len(self.dataset)
        position = self.rank + self.world_size * k
        if self._epoch != position // n:
            self._epoch, self._epoch_order = position // n, self._order(position // n)
        rng = np.random.default_rng([self.seed, 0xC11B, position])
        clip = self.dataset.get_clip(int(self._epoch_order[position % n]), rng)
        return {
            "frames": torch.from_numpy(clip["frames"]),
            "label": torch.from_numpy(clip["label"]),
            "times": torch.from_numpy(clip["times"]),
            "video_len": clip["video_len"],
            "index": clip["index"],
        }

    _epoch: int = -1
    _epoch_order: np.ndarray | None = None

    def __iter__(self):
        info = torch.utils.data.get_worker_info()
        worker, num_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        block = worker
        while True:
            # Worker w serves batches w, w + num_workers, ... of this rank's sequence.
            first = self.start + block * self.batch_size
            for k in range(first, first + self.batch_size):
                yield self.clip_at(k)
            block += num_workers


def _summary(path: str) -> str:
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        dataset = VideoFramesDataset(path, use_labels=False)
    counts = dataset.frame_counts
    lines = [
        f"{path}: {dataset.num_videos} videos, {dataset.width}x{dataset.height}, {dataset.num_channels} channels",
        f"frames per video: min {counts.min()}, median {int(np.median(counts))}, max {counts.max()}, total {counts.sum()}",
        f"fps: {dataset.fps:g}" if dataset.fps else "fps: not recorded",
    ]
    if dataset._info.get("labels") is not None:
        try:
            labelled = VideoFramesDataset(path, use_labels=True)
            lines.append(f"labels: dimension {labelled.label_dim}")
        except ValueError as error:
            lines.append(f"labels: unusable ({error})")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python -m training.dataset PATH", file=sys.stderr)
        sys.exit(2)
    try:
        print(_summary(sys.argv[1]))
    except (ValueError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
