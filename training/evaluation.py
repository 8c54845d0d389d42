"""What a run produces besides snapshots: sample videos of G_ema and metrics, with the best snapshot by FVD."""

from __future__ import annotations

import json
import math
import shutil
import warnings
from pathlib import Path

import torch

from stylegan_v.fileio import atomic_output
from training import snapshot


def write_samples(G_ema: torch.nn.Module, path: Path, seed: int, videos: int | None, frames: int, fps: float,
                  device: torch.device) -> Path | None:
    """A grid video of `videos` samples (None: at most 2048x2048 pixels, 16 videos at most); None if it failed."""
    from stylegan_v import render
    from stylegan_v.video import write_mp4

    res = G_ema.img_resolution
    n = videos or min(16, max(1, (2048 // res) ** 2))
    try:
        ws = render.sample_content(G_ema, seed, n, device=device)
        c = render.class_labels(G_ema, seed, n) if G_ema.c_dim > 0 else None
        t = render.timestamps(frames, fps=fps, dataset_fps=fps)
        chunks = render.render_chunks(G_ema, ws, render.MotionSeed(seed, n), t, c=c)
        write_mp4(path, (render.to_uint8(render.grid(f.cpu())) for _, f in chunks), fps=fps)
    except Exception as e:  # a preview must never stop training
        warnings.warn(f"could not write sample video {path}: {e}", stacklevel=2)
        return None
    return path


def record_metrics(outdir: Path, kimg: float, export: Path | None, results: dict, best: dict) -> dict | None:
    """Append `results` to metrics.jsonl; if the first FVD requested beats `best`, copy `export` to
    network-best.safetensors, write best.json and return the new best (else None)."""
    entry = {"kimg": kimg, "snapshot": export.name if export else None, "results": results}
    with open(outdir / "metrics.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")
    fvd = {k: v for k, v in results.items() if k.lower().startswith("fvd") and isinstance(v, (int, float))}
    if not fvd or export is None:
        return None
    key = next(iter(fvd))  # results keep the requested order
    if best and fvd[key] >= best.get("value", math.inf):
        return None
    new_best = {"metric": key, "value": fvd[key], "kimg": kimg, "snapshot": export.name}
    with atomic_output(outdir / snapshot.BEST_EXPORT, what="best export") as tmp:
        shutil.copyfile(export, tmp)
    with atomic_output(outdir / "best.json", what="file") as tmp:
        Path(tmp).write_text(json.dumps(new_best, indent=2), encoding="utf-8")
    return new_best


def summary(results: dict) -> str:
    return "metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in results.items() if isinstance(v, (int, float)))
