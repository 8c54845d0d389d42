"""An animated WEBP preview of a rendered video, small enough for a README.

    python -m training.preview out/demo.mp4 preview.webp --fps 15 --seconds 4

Frames are taken from the video as it is (no re-rendering), every n-th one to reach `--fps`,
so the preview shows exactly what the command that wrote the video made.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from stylegan_v.fileio import atomic_output
from stylegan_v.video import read_video


def preview_frames(frames: np.ndarray, fps: float, target_fps: float, seconds: float) -> tuple[np.ndarray, float]:
    """The frames of the first `seconds`, thinned to about `target_fps`; and the rate they play at."""
    if len(frames) == 0:
        raise ValueError("the video has no frames")
    step = max(1, round(fps / target_fps))
    kept = frames[: max(1, round(seconds * fps))][::step]
    return kept, fps / step


def write_webp(frames: np.ndarray, fps: float, path: Path, quality: int = 80) -> None:
    images = [Image.fromarray(frame) for frame in frames]
    with atomic_output(path, suffix=".webp", what="preview") as tmp:
        images[0].save(tmp, format="WEBP", save_all=True, append_images=images[1:], duration=round(1000 / fps),
                       loop=0, quality=quality, method=4)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.preview", description=__doc__.split("\n\n")[0])
    parser.add_argument("video", type=Path, help="an mp4 (or any video PyAV reads)")
    parser.add_argument("out", type=Path, help="the .webp to write")
    parser.add_argument("--fps", type=float, default=15.0, help="preview frame rate (default 15)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length from the start (default 4)")
    parser.add_argument("--quality", type=int, default=80, help="WEBP quality 0..100 (default 80)")
    args = parser.parse_args(argv)
    if not args.video.is_file():
        print(f"error: {args.video} not found", file=sys.stderr)
        return 2
    try:
        frames, fps = read_video(args.video)
        kept, rate = preview_frames(frames, fps, args.fps, args.seconds)
        write_webp(kept, rate, args.out, args.quality)
    except (ValueError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.out}: {len(kept)} frames at {rate:g} fps, {args.out.stat().st_size / 1e6:.2f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
