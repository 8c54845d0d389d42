"""Synthetic video datasets with real, smooth motion (tests, smoke runs, demo model).

Two kinds, each a pure function of (seed, video index), so datasets are reproducible
and workers can share the job in any order:

- `shapes`: one to three soft coloured ellipses drifting along smooth random
  trajectories (sums of slow sinusoids) over a slowly turning two-colour gradient.
  Colours, sizes, speeds and counts vary between videos, so a GAN has content
  (appearance) and motion (trajectories) to learn. Small and quick to learn: tests.
- `sky`: a sky timelapse (drifting cloud decks in perspective, the sun on its arc,
  day to dusk to night colours, a horizon silhouette); see `training.procedural_sky`.
  What the demo model is trained on.

    python -m training.procedural DEST --kind sky --videos N --frames F --resolution R --seed S [--labels]

DEST is a directory, or a zip when it ends with .zip. With --labels a dataset.json
gives each video one of NUM_CLASSES classes: for shapes the number of shapes minus
one, for sky the hour at its first frame (day, golden hour, night).
"""

from __future__ import annotations

import argparse
import multiprocessing
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np

from training import procedural_sky
from training.image_codec import encode_png
from training.layout import LayoutWriter
from training.progress import ProgressBar

NUM_CLASSES = 3  # videos hold 1..3 shapes; the class is the count minus one
NOMINAL_FPS = 25.0  # motion is defined per frame; this only sets playback speed in previews
_HARMONICS = 3


@dataclass(frozen=True)
class VideoRecipe:
    """Every random choice behind one video; rendering is then deterministic in t."""

    bg_colors: np.ndarray      # [2, 3] gradient end colours, 0..1
    bg_angle: float            # gradient direction at t=0, radians
    bg_spin: float             # radians per frame
    centers: np.ndarray        # [K, 2] mean position (x, y), 0..1
    amplitudes: np.ndarray     # [K, 2, H] sinusoid amplitudes, image fraction
    frequencies: np.ndarray    # [K, 2, H] cycles per frame
    phases: np.ndarray         # [K, 2, H] radians
    colors: np.ndarray         # [K, 3] 0..1
    radii: np.ndarray          # [K, 2] semi-axes, image fraction
    orientations: np.ndarray   # [K] radians at t=0
    spins: np.ndarray          # [K] radians per frame
    softness: np.ndarray       # [K] edge width relative to the radius

    @property
    def num_shapes(self) -> int:
        return len(self.colors)


def draw_recipe(seed: int, video_index: int) -> VideoRecipe:
    rng = np.random.default_rng([seed, video_index])
    num_shapes = int(rng.integers(1, NUM_CLASSES + 1))
    speed = float(np.exp2(rng.uniform(-1.0, 1.0)))  # per-video tempo, 0.5x .. 2x
    # Slow sinusoids: periods of 32..160 frames at 1x, so motion is visible over a
    # few frames yet smooth from one frame to the next.
    frequencies = speed / rng.uniform(32.0, 160.0, size=(num_shapes, 2, _HARMONICS))
    amplitudes = rng.uniform(0.02, 0.09, size=(num_shapes, 2, _HARMONICS))
    hue = rng.uniform(0.0, 1.0)
    bg = np.stack([_hue_to_rgb(hue) * 0.35 + 0.15, _hue_to_rgb(hue + 0.5) * 0.35 + 0.1])
    return VideoRecipe(
        bg_colors=bg,
        bg_angle=float(rng.uniform(0, 2 * np.pi)),
        bg_spin=float(rng.uniform(-1, 1) * 2 * np.pi / 400 * speed),
        centers=rng.uniform(0.3, 0.7, size=(num_shapes, 2)),
        amplitudes=amplitudes,
        frequencies=frequencies,
        phases=rng.uniform(0, 2 * np.pi, size=(num_shapes, 2, _HARMONICS)),
        colors=np.stack([_hue_to_rgb(h) * rng.uniform(0.7, 1.0) + 0.1 for h in rng.uniform(0, 1, num_shapes)]),
        radii=rng.uniform(0.08, 0.2, size=(num_shapes, 1)) * rng.uniform(0.6, 1.0, size=(num_shapes, 2)),
        orientations=rng.uniform(0, np.pi, size=num_shapes),
        spins=rng.uniform(-1, 1, size=num_shapes) * 2 * np.pi / 200 * speed,
        softness=rng.uniform(0.15, 0.5, size=num_shapes),
    )


def _hue_to_rgb(hue: float) -> np.ndarray:
    """Fully saturated colour for a hue in turns (0..1), components 0..1."""
    return np.clip(np.abs(((hue * 6.0 + np.array([0.0, 4.0, 2.0])) % 6.0) - 3.0) - 1.0, 0.0, 1.0)


def shape_positions(recipe: VideoRecipe, t: float) -> np.ndarray:
    """Centres [K, 2] (x, y) of the shapes at time t (frames, any real)."""
    waves = recipe.amplitudes * np.sin(2 * np.pi * recipe.frequencies * t + recipe.phases)
    return recipe.centers + waves.sum(axis=-1)


def render_frame(recipe: VideoRecipe, t: float, resolution: int) -> np.ndarray:
    """uint8 [R, R, 3] frame at time t."""
    coords = (np.arange(resolution, dtype=np.float64) + 0.5) / resolution
    y, x = np.meshgrid(coords, coords, indexing="ij")
    angle = recipe.bg_angle + recipe.bg_spin * t
    ramp = np.clip(0.5 + ((x - 0.5) * np.cos(angle) + (y - 0.5) * np.sin(angle)) * np.sqrt(2), 0.0, 1.0)
    image = recipe.bg_colors[0] * (1 - ramp[..., None]) + recipe.bg_colors[1] * ramp[..., None]
    positions = shape_positions(recipe, t)
    for k in range(recipe.num_shapes):
        theta = recipe.orientations[k] + recipe.spins[k] * t
        dx, dy = x - positions[k, 0], y - positions[k, 1]
        u = (dx * np.cos(theta) + dy * np.sin(theta)) / recipe.radii[k, 0]
        v = (-dx * np.sin(theta) + dy * np.cos(theta)) / recipe.radii[k, 1]
        dist = np.sqrt(u * u + v * v)
        edge = np.clip((1.0 - dist) / recipe.softness[k] + 0.5, 0.0, 1.0)
        alpha = (edge * edge * (3.0 - 2.0 * edge))[..., None]  # smoothstep: soft, anti-aliased rim
        image = image * (1 - alpha) + recipe.colors[k] * alpha
    return np.round(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)


def _render_shapes(seed: int, video_index: int, num_frames: int, resolution: int) -> np.ndarray:
    recipe = draw_recipe(seed, video_index)
    return np.stack([render_frame(recipe, float(t), resolution) for t in range(num_frames)])


def _render_sky(seed: int, video_index: int, num_frames: int, resolution: int) -> np.ndarray:
    recipe = procedural_sky.draw_sky_recipe(seed, video_index)
    return procedural_sky.render_sky_frames(recipe, np.arange(num_frames), resolution)


@dataclass(frozen=True)
class Kind:
    """One procedural dataset: how to render a video and how to label it."""

    render: Callable[[int, int, int, int], np.ndarray]  # (seed, index, frames, resolution) -> uint8 [F, R, R, 3]
    label: Callable[[int, int], int]  # (seed, index) -> class in 0..NUM_CLASSES-1


KINDS: dict[str, Kind] = {
    "shapes": Kind(_render_shapes, lambda seed, index: draw_recipe(seed, index).num_shapes - 1),
    "sky": Kind(_render_sky, lambda seed, index: procedural_sky.hour_class(procedural_sky.draw_sky_recipe(seed, index))),
}
assert procedural_sky.NUM_CLASSES == NUM_CLASSES


def _kind(name: str) -> Kind:
    if name not in KINDS:
        raise ValueError(f"--kind must be one of {', '.join(KINDS)}, got {name!r}")
    return KINDS[name]


def render_video(seed: int, video_index: int, num_frames: int, resolution: int, kind: str = "shapes") -> np.ndarray:
    """uint8 [F, R, R, 3]: frames at t = 0, 1, ..., F-1."""
    return _kind(kind).render(seed, video_index, num_frames, resolution)


def _encode_video(job: tuple[str, int, int, int, int]) -> tuple[int, list[bytes]]:
    kind, seed, index, num_frames, resolution = job
    return index, [encode_png(frame) for frame in render_video(seed, index, num_frames, resolution, kind)]


def video_name(index: int) -> str:
    return f"video_{index:06d}"


def write_dataset(
    dest: str,
    num_videos: int,
    num_frames: int,
    resolution: int,
    seed: int = 0,
    labels: bool = False,
    workers: int = 1,
    overwrite: bool = False,
    progress: bool = True,
    kind: str = "shapes",
) -> None:
    label = _kind(kind).label
    if num_videos < 1:
        raise ValueError(f"--videos must be >= 1, got {num_videos}")
    if num_frames < 1:
        raise ValueError(f"--frames must be >= 1, got {num_frames}")
    if not 4 <= resolution <= 4096:
        raise ValueError(f"--resolution must be in 4..4096, got {resolution}")
    jobs = [(kind, seed, i, num_frames, resolution) for i in range(num_videos)]
    with LayoutWriter(dest, overwrite=overwrite) as out, ProgressBar(
        num_videos, desc="procedural", unit="video", enabled=progress
    ) as bar:
        if workers > 1:
            # Spawned, not forked: the sky kind renders with torch, and a child forked from a process
            # whose torch thread pool is running can deadlock on the pool's locks.
            with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn")) as pool:
                # map() keeps input order, so the written layout does not depend on scheduling.
                results = pool.map(_encode_video, jobs, chunksize=max(1, num_videos // (workers * 8)))
                for index, frames in results:
                    out.add_video(video_name(index), frames)
                    bar.update()
        else:
            for job in jobs:
                index, frames = _encode_video(job)
                out.add_video(video_name(index), frames)
                bar.update()
        classes = {video_name(i): label(seed, i) for i in range(num_videos)} if labels else None
        out.write_info(labels=classes, fps=NOMINAL_FPS)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m training.procedural", description=__doc__.split("\n\n")[0])
    parser.add_argument("dest", help="output directory, or a .zip file")
    parser.add_argument("--kind", choices=list(KINDS), default="shapes", help="what the videos show (default shapes)")
    parser.add_argument("--videos", type=int, default=64, help="number of videos (default 64)")
    parser.add_argument("--frames", type=int, default=64, help="frames per video (default 64)")
    parser.add_argument("--resolution", type=int, default=64, help="frame size in pixels (default 64)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--labels", action="store_true", help=f"write dataset.json with {NUM_CLASSES} classes")
    parser.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    parser.add_argument("--overwrite", action="store_true", help="replace DEST if it exists")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    try:
        write_dataset(
            args.dest, args.videos, args.frames, args.resolution, seed=args.seed, labels=args.labels,
            workers=args.workers, overwrite=args.overwrite, progress=not args.quiet, kind=args.kind,
        )
    except (ValueError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {args.videos} {args.kind} videos x {args.frames} frames at {args.resolution}px to {args.dest}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
