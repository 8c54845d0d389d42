"""A PNG frame strip of a generator: one row per video, one column per moment.

    python -m training.frame_strip model.safetensors strip.png --videos 4 --frames 8 --step 0.4 --scale 3

Used for the demo model's card and the README; handy to look at any run's export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

import stylegan_v
from stylegan_v import render as R
from stylegan_v.fileio import atomic_output
from training.image_codec import encode_png


def frame_strip(G: stylegan_v.Generator, *, seed: int, motion_seed: int, videos: int, frames: int, step: float,
                truncation_psi: float = 1.0, gap: int = 2) -> np.ndarray:
    """uint8 [H, W, 3]: `videos` rows of `frames` frames, `step` seconds apart, separated by `gap` white pixels."""
    ws = R.sample_content(G, seed, videos, truncation_psi)
    c = R.class_labels(G, seed, videos)
    t = R.timestamps(frames, fps=1 / step, dataset_fps=G.model_config.dataset_fps)
    pixels = R.to_uint8(R.render(G, ws, R.MotionSeed(motion_seed, videos), t, c=c)).numpy()  # [B, F, H, W, 3]
    return tile([list(row) for row in pixels], gap)


def tile(rows: list[list[np.ndarray | None]], gap: int = 2) -> np.ndarray:
    """uint8 [H, W, 3]: rows of equal-sized uint8 [h, w, 3] cells, `gap` white pixels apart; None leaves a cell white.

    Rows may differ in length; the strip is as wide as the longest.
    """
    cells = [cell for row in rows for cell in row if cell is not None]
    if not cells:
        raise ValueError("a strip needs at least one frame")
    h, w = cells[0].shape[:2]
    if any(cell.shape != cells[0].shape for cell in cells):
        raise ValueError(f"every frame of a strip must be {h}x{w}x3")
    columns = max(len(row) for row in rows)
    strip = np.full((len(rows) * (h + gap) - gap, columns * (w + gap) - gap, 3), 255, np.uint8)
    for r, row in enumerate(rows):
        for col, cell in enumerate(row):
            if cell is not None:
                strip[r * (h + gap):r * (h + gap) + h, col * (w + gap):col * (w + gap) + w] = cell
    return strip


def write_png(strip: np.ndarray, path: Path, scale: int = 1) -> np.ndarray:
    """Write the strip with each pixel enlarged `scale` times (nearest); returns what was written."""
    strip = strip.repeat(scale, 0).repeat(scale, 1)
    with atomic_output(path, suffix=".png", what="frame strip") as tmp:
        Path(tmp).write_bytes(encode_png(strip, compress_level=9))
    return strip


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", type=Path)
    p.add_argument("out", type=Path, help="PNG file")
    p.add_argument("--videos", type=int, default=4)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--step", type=float, default=0.4, help="seconds between columns")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--motion-seed", type=int, default=2)
    p.add_argument("--truncation", type=float, default=1.0)
    p.add_argument("--scale", type=int, default=1, help="enlarge each pixel (nearest)")
    args = p.parse_args(argv)
    if not (1 <= args.videos <= 64 and 1 <= args.frames <= 64 and args.step > 0 and 1 <= args.scale <= 16):
        p.error("need 1..64 videos, 1..64 frames, --step > 0 and --scale 1..16")
    torch.manual_seed(0)
    G = stylegan_v.load(args.checkpoint)
    with torch.no_grad():
        strip = frame_strip(G, seed=args.seed, motion_seed=args.motion_seed, videos=args.videos, frames=args.frames,
                            step=args.step, truncation_psi=args.truncation)
    strip = write_png(strip, args.out, args.scale)
    print(f"wrote {args.out} ({strip.shape[1]}x{strip.shape[0]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
