"""Projection benchmark: steps per second at the 256x256 preset, and the quality figures.

    python -m stylegan_v.projection_benchmark speed [--device auto] [--steps 5]
    python -m stylegan_v.projection_benchmark figures [--checkpoint FILE] [--steps N] [--clip-steps N]
    python -m stylegan_v.projection_benchmark strip [--out docs/projection_strip.png]

`speed` times image and video projection steps of the ffs256 configuration (random weights:
the cost does not depend on them) on the CPU and, where present, on CUDA, in float32 and
under bfloat16 autocast. `figures` measures, on the demo model (or --checkpoint): frames the
model generated (PSNR of the fit), frames of held-out procedural videos of the kind the model
was trained on (PSNR and Inception distance of the fit against w_avg and the best of 64 random
samples, for each perceptual choice), and generated 16-frame clips (mean PSNR of the fitted
motion, per-frame change of the fit and of its continuation over the target's). `strip` draws
the README's picture. The held-out frames come from the trainer's procedural data generator
and the strip from its frame-strip code, so these two run from a checkout of the repository.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from .arguments import DEMO_CHECKPOINT as DEMO

# Procedural videos from this seed are new to the demo model: its provenance records the seed of its
# training data (7), and every (seed, video) pair draws its own random stream.
HELD_OUT_SEED = 9001
HELD_OUT_FRAME = 10
CLIP_FRAMES = 16
# Generated clips the figures fit: (content seed, motion seed); the tests use other pairs.
CLIP_PAIRS = ((201, 202), (203, 204), (205, 206), (207, 208), (209, 210), (211, 212))


# The targets, shared by the figures and tests/test_projection.py.

def generated_frame(G, seed: int, t: float, motion_seed: int) -> torch.Tensor:
    """[1, 3, H, W] raw: what the model draws for content `seed` at model time t of motion `motion_seed`."""
    from . import render as R

    return R.render(G, R.sample_content(G, seed, 1), R.MotionSeed(motion_seed), torch.tensor([float(t)]))[:, 0]


def training_data(checkpoint: str | Path) -> tuple[str, int] | None:
    """(kind, seed) of the procedural data a checkpoint was trained on, from its provenance; None if unrecorded."""
    import json
    import re

    from .checkpoint import read_config

    provenance = read_config(checkpoint)[1].get("provenance")
    command = json.loads(provenance).get("data", "") if provenance else ""
    kind, seed = re.search(r"--kind (\w+)", command), re.search(r"--seed (\d+)", command)
    if "training.procedural" not in command:
        return None
    return (kind.group(1) if kind else "shapes"), (int(seed.group(1)) if seed else 0)


def held_out_frames(count: int, resolution: int, kind: str = "sky") -> torch.Tensor:
    """[count, 3, R, R] raw: frame HELD_OUT_FRAME of procedural videos 0..count-1 of HELD_OUT_SEED."""
    from training.procedural import render_video

    frames = [render_video(HELD_OUT_SEED, i, HELD_OUT_FRAME + 1, resolution, kind)[HELD_OUT_FRAME]
              for i in range(count)]
    return torch.from_numpy(np.stack(frames)).permute(0, 3, 1, 2).float() / 127.5 - 1


def generated_clip(G, content_seed: int, motion_seed: int, frames: int = CLIP_FRAMES) -> torch.Tensor:
    """[frames, 3, H, W] raw: a clip the model draws, one frame per dataset frame (fps = dataset_fps)."""
    from . import render as R
    from .projection import dataset_fps_of

    fps = dataset_fps_of(G)
    return R.render(G, R.sample_content(G, content_seed, 1), R.MotionSeed(motion_seed),
                    R.timestamps(frames, fps, fps))[0]


def clip_scores(G, fit, clip: torch.Tensor) -> dict[str, float]:
    """How a clip fit did: mean and worst PSNR, its per-frame change and its continuation's (3 clip lengths
    past the end) over the clip's, and whether the continuation is finite."""
    from . import render as R
    from .projection import dataset_fps_of, frame_change, psnr

    after = R.timestamps(3 * clip.shape[0], fit.fps, dataset_fps_of(G), start_time=clip.shape[0] / fit.fps)
    continuation = R.render(G, fit.ws, fit.motion, after)[0]
    p = psnr(fit.frames, clip)
    target = frame_change(clip)
    return {"psnr": float(p.mean()), "worst": float(p.min()), "change": frame_change(fit.frames) / target,
            "continuation": frame_change(continuation) / target,
            "finite": bool(torch.isfinite(continuation).all())}


def step_rates(G, kind: str, precision: str, steps: int) -> list[float]:
    """Projection steps per second on G's device: `steps` timed steps of an image ("image", one
    frame per step) or of a 16-frame clip ("video", FAST_VIDEO's frames per step), after one
    warm-up step; perceptual none, no choice of a starting w.
    Raises if the fit is not finite, so a speed is never reported for a broken search."""
    from . import render as R
    from .projection import FAST, FAST_VIDEO, project_images, project_video

    device = next(G.parameters()).device
    # content_starts=0: the search's steps are timed, not its choice of a start (64 candidate renders).
    config = replace(FAST if kind == "image" else FAST_VIDEO, steps=steps + 1, perceptual="none",
                     precision=precision, content_starts=0)
    stamps: list[float] = []

    def tick(_progress):
        if device.type == "cuda":
            torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    torch.manual_seed(0)
    if kind == "image":
        target = R.render(G, R.sample_content(G, 1, 1, device=device), R.MotionSeed(1), torch.tensor([3.0]))[0]
        fit = project_images(G, target.to(device), t=3.0, config=config, callback=tick)
    else:
        clip = R.render(G, R.sample_content(G, 2, 1, device=device), R.MotionSeed(2),
                        R.timestamps(CLIP_FRAMES, 25.0, 25.0))[0]
        fit = project_video(G, clip.to(device), 25.0, config=config, callback=tick)
    if not torch.isfinite(fit.ws).all():
        raise RuntimeError(f"{kind} projection in {precision} on {device} gave non-finite latents")
    return [1 / (b - a) for a, b in itertools.pairwise(stamps)]  # the first step warms up


def speed(args: argparse.Namespace) -> int:
    from . import Generator, preset

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    cfg = preset("ffs256").generator
    print(f"projection steps/s, ffs256 generator ({cfg.resolution}x{cfg.resolution}), random weights, "
          f"perceptual none; median of {args.steps} steps after one warm-up step (min-max in brackets)")
    from .projection import FAST_VIDEO

    print(f"device | precision | image (1 frame/step) | video ({FAST_VIDEO.frames_per_step} frames/step)")
    for device in devices:
        torch.manual_seed(0)
        G = Generator(cfg).eval().requires_grad_(False).to(device)
        for precision in ("float32", "bfloat16"):
            cells = []
            for kind in ("image", "video"):
                rates = step_rates(G, kind, precision, args.steps)
                cells.append(f"{statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})")
            print(f"{device} | {precision} | {cells[0]} | {cells[1]}", flush=True)
    return 0


def figures(args: argparse.Namespace) -> int:
    import stylegan_v

    from .projection import (
        FAST,
        FAST_VIDEO,
        baselines,
        inception_available,
        inception_distance,
        project_images,
        project_video,
        psnr,
    )

    try:
        import training.procedural  # noqa: F401  (the held-out frames)
    except ImportError:
        print("error: `figures` takes its held-out frames from training.procedural: run it from a checkout",
              file=sys.stderr)
        return 2
    if not inception_available():
        print("error: `figures` reports the Inception distance, which needs the metrics extra", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    G = stylegan_v.load(args.checkpoint).eval().requires_grad_(False)
    data = training_data(args.checkpoint)
    kind = data[0] if data else "sky"
    if data and data[1] == HELD_OUT_SEED:
        print(f"error: {Path(args.checkpoint).name} was trained on procedural seed {HELD_OUT_SEED}, the held-out "
              "seed", file=sys.stderr)
        return 2
    motion, t = stylegan_v.render.MotionSeed(3), 4.0
    generated = torch.cat([generated_frame(G, s, t, 3) for s in range(101, 101 + args.targets)])
    held_out = held_out_frames(args.targets, G.img_resolution, kind)
    steps = args.steps or FAST.steps
    print(f"model {Path(args.checkpoint).name}, {args.targets} targets each, {steps} steps, t={t:g}, motion seed 3; "
          f"held out: procedural {kind} seed {HELD_OUT_SEED}, frame {HELD_OUT_FRAME}; {args.threads} thread(s)")
    print("target | method | PSNR dB (mean, min) | Inception distance (mean) | seconds")
    for name, targets in () if args.clips_only else (("generated", generated), (f"held-out {kind}", held_out)):
        for label, frames in baselines(G, targets, t, motion).items():
            p, d = psnr(frames, targets), inception_distance(frames, targets)
            print(f"{name} | {label} | {p.mean():.2f}, {p.min():.2f} | {d.mean():.4f} | -")
        for perceptual in ("none", "inception"):
            for latent in ("w", "w+"):
                config = replace(FAST, steps=steps, perceptual=perceptual, latent=latent)
                start = time.perf_counter()
                fit = project_images(G, targets, t=t, motion=motion, config=config)
                seconds = time.perf_counter() - start
                p, d = psnr(fit.frames, targets), inception_distance(fit.frames, targets)
                print(f"{name} | fit {latent}, perceptual {perceptual} | {p.mean():.2f}, {p.min():.2f} | "
                      f"{d.mean():.4f} | {seconds:.0f}", flush=True)
    clip_steps = args.clip_steps or FAST_VIDEO.steps
    print(f"clip ({CLIP_FRAMES} frames, {clip_steps} steps, pixels) | mean PSNR dB (min) | change fit / target | "
          "continuation change / target | seconds")
    for content_seed, motion_seed in CLIP_PAIRS[:args.clips]:
        clip = generated_clip(G, content_seed, motion_seed)
        start = time.perf_counter()
        fit = project_video(G, clip, G.model_config.dataset_fps,
                            config=replace(FAST_VIDEO, steps=clip_steps, perceptual="none"))
        seconds = time.perf_counter() - start
        score = clip_scores(G, fit, clip)
        print(f"seeds {content_seed}/{motion_seed} | {score['psnr']:.2f} ({score['worst']:.2f}) | "
              f"{score['change']:.2f} | {score['continuation']:.2f} | {seconds:.0f}", flush=True)
    return 0


def strip(args: argparse.Namespace) -> int:
    """The README's picture: a clip (target, then the fit and its continuation) and a picture (target, fit)."""
    import stylegan_v

    from . import render as R
    from .projection import FAST, FAST_VIDEO, project_images, project_video

    try:
        from training.frame_strip import tile, write_png
    except ImportError:
        print("error: `strip` draws with training.frame_strip: run it from a checkout", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    G = stylegan_v.load(args.checkpoint).eval().requires_grad_(False)
    data = training_data(args.checkpoint)
    fps = G.model_config.dataset_fps
    content_seed, motion_seed = CLIP_PAIRS[args.clip]
    clip = generated_clip(G, content_seed, motion_seed)
    fit = project_video(G, clip, fps, config=FAST_VIDEO)
    later = R.timestamps(3 * CLIP_FRAMES, fps, fps, start_time=CLIP_FRAMES / fps)
    continuation = R.render(G, fit.ws, fit.motion, later)[0]
    target = held_out_frames(1, G.img_resolution, data[0] if data else "sky")
    picture = project_images(G, target, t=4.0, motion=R.MotionSeed(3), config=FAST)
    cells = lambda frames: list(R.to_uint8(frames).numpy())
    every = args.every
    rows = [cells(clip[::every]),  # the clip; blank where the continuation goes below
            cells(fit.frames[::every]) + cells(continuation[::2 * every]),
            cells(torch.cat([target, picture.frames]))]
    written = write_png(tile(rows, gap=2), args.out, args.scale)
    print(f"wrote {args.out} ({written.shape[1]}x{written.shape[0]}, {args.out.stat().st_size / 1e3:.0f} kB): clip seeds "
          f"{content_seed}/{motion_seed} every {every} frames, its fit and continuation (every {2 * every}); "
          f"held-out {data[0] if data else 'sky'} frame and its fit")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m stylegan_v.projection_benchmark", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("speed", help="steps/s of the 256x256 preset")
    s.add_argument("--device", default="auto", help="auto: the CPU, and CUDA where present")
    s.add_argument("--steps", type=int, default=5, help="timed steps per configuration")
    s.set_defaults(func=speed)
    f = sub.add_parser("figures", help="quality of the fit against the baselines")
    f.add_argument("--checkpoint", default=str(DEMO))
    f.add_argument("--steps", type=int, default=0, help="image steps (default: the fast preset's)")
    f.add_argument("--clip-steps", type=int, default=0, help="clip steps (default: the fast preset's)")
    f.add_argument("--targets", type=int, default=4)
    f.add_argument("--clips", type=int, default=len(CLIP_PAIRS))
    f.add_argument("--threads", type=int, default=1)
    f.add_argument("--clips-only", action="store_true", help="measure the clips only")
    f.set_defaults(func=figures)
    d = sub.add_parser("strip", help="the README's picture: target / fit / continuation")
    d.add_argument("--checkpoint", default=str(DEMO))
    d.add_argument("--out", type=Path, default=Path("docs/projection_strip.png"))
    d.add_argument("--clip", type=int, default=0, choices=range(len(CLIP_PAIRS)), help="which CLIP_PAIRS clip")
    d.add_argument("--every", type=int, default=2, help="show every n-th frame of the clip")
    d.add_argument("--scale", type=int, default=2, help="enlarge each pixel (nearest)")
    d.add_argument("--threads", type=int, default=1)
    d.set_defaults(func=strip)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
