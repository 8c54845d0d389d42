"""Feature statistics: streaming float64 mean/covariance, and their on-disk cache."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from stylegan_v.fileio import atomic_output

STATS_FORMAT = "stylegan-v-metric-stats/2"


class FeatureStats:
    """Accumulates sum(x) and sum(x x^T) in float64, so millions of features lose no precision.

    The covariance is the population one (divided by n), as in the reference
    FID/FVD implementations.
    """

    def __init__(self, dim: int, device: torch.device | str = "cpu") -> None:
        self.num_items = 0
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    def append(self, features: torch.Tensor) -> None:
        if features.ndim != 2 or features.shape[1] != self.sum.shape[0]:
            raise ValueError(f"features must be [N, {self.sum.shape[0]}], got shape {tuple(features.shape)}")
        x = features.detach().to(device=self.sum.device, dtype=torch.float64)
        self.sum += x.sum(dim=0)
        self.sum_outer += x.T @ x
        self.num_items += x.shape[0]

    def all_reduce(self) -> None:
        """Sums the partial statistics of every rank of the default process group."""
        count = torch.tensor([self.num_items], dtype=torch.float64, device=self.sum.device)
        for tensor in (self.sum, self.sum_outer, count):
            dist.all_reduce(tensor)
        self.num_items = int(count.item())

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.num_items == 0:
            raise ValueError("no features were accumulated")
        mean = (self.sum / self.num_items).cpu().numpy()
        cov = (self.sum_outer / self.num_items).cpu().numpy() - np.outer(mean, mean)
        return mean, cov


def save_stats(path: str | Path, mean: np.ndarray, cov: np.ndarray, sqrt_cov: np.ndarray, num_items: int,
               metadata: dict) -> None:
    """Writes atomically (stylegan_v.fileio), so concurrent readers never see half a file.

    `sqrt_cov` (frechet.psd_sqrt(cov)) is stored too: it is the costly half of every
    later Fréchet distance against these statistics.
    """
    header = json.dumps({"format": STATS_FORMAT, "num_items": int(num_items), **metadata}, sort_keys=True)
    with atomic_output(path, what="metric statistics") as tmp, open(tmp, "wb") as handle:
        np.savez(handle, mean=mean, cov=cov, sqrt_cov=sqrt_cov, header=np.array(header))


def load_stats(path: str | Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict]:
    """(mean, cov, sqrt_cov, header). Plain arrays only: the file cannot execute code."""
    try:
        with np.load(path, allow_pickle=False) as data:
            header = json.loads(str(data["header"]))
            mean, cov, sqrt_cov = data["mean"], data["cov"], data["sqrt_cov"]
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{path}: unreadable metric statistics ({error})") from error
    square = (mean.shape[0], mean.shape[0]) if mean.ndim == 1 else None
    if header.get("format") != STATS_FORMAT or cov.shape != square or sqrt_cov.shape != square:
        raise ValueError(f"{path}: not a {STATS_FORMAT} file")
    return mean, cov, sqrt_cov, header
