"""Projection benchmark: steps per second at the 256x256 preset, and the quality figures.

    python -m stylegan_v.projection_benchmark speed [--device auto] [--steps 5]
    python -m stylegan_v.projection_benchmark figures [--checkpoint FILE] [--steps 150]

`speed` times image and video projection steps of the ffs256 configuration (random weights:
the cost does not depend on them) on the CPU and, where present, on CUDA, in float32 and
under bfloat16 autocast. `figures` measures, on the demo model (or --checkpoint): frames the
model generated (PSNR of the fit), frames of held-out procedural videos (PSNR and Inception
distance of the fit against w_avg and the best of 64 random samples, for each perceptual
choice), and a generated 16-frame clip (mean PSNR of the fitted motion, per-frame change of
the fit over the target's). The held-out frames come from the trainer's procedural data
generator, so `figures` runs from a checkout of the repository.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch

DEMO = Path(__file__).resolve().parent / "assets" / "stylegan_v_demo.safetensors"
HELD_OUT_SEED = 9001  # the demo model was trained on procedural seed 7; these videos were never seen
CLIP_FRAMES = 16


def speed(args: argparse.Namespace) -> int:
    from . import Generator, preset
    from . import render as R
    from .projection import FAST, project_images, project_video

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else []) if args.device == "auto" else [args.device]
    cfg = preset("ffs256").generator
    print(f"projection steps/s, ffs256 generator ({cfg.resolution}x{cfg.resolution}), random weights, "
          f"perceptual none; median of {args.steps} steps after one warm-up step (min-max in brackets)")
    print("device | precision | image (1 frame/step) | video (8 frames/step)")
    for device in devices:
        torch.manual_seed(0)
        G = Generator(cfg).eval().requires_grad_(False).to(device)
        target = R.render(G, R.sample_content(G, 1, 1, device=device), R.MotionSeed(1), torch.tensor([3.0]))[0]
        clip = R.render(G, R.sample_content(G, 2, 1, device=device), R.MotionSeed(2),
                        R.timestamps(CLIP_FRAMES, 25.0, 25.0))[0]
        for precision in ("float32", "bfloat16"):
            config = replace(FAST, steps=args.steps + 1, perceptual="none", precision=precision)
            cells = []
            for kind in ("image", "video"):
                stamps: list[float] = []

                def tick(_progress, stamps=stamps, device=device):
                    if device == "cuda":
                        torch.cuda.synchronize()
                    stamps.append(time.perf_counter())

                if kind == "image":
                    project_images(G, target.to(device), t=3.0, config=config, callback=tick)
                else:
                    project_video(G, clip.to(device), 25.0, config=config, callback=tick)
                rates = [1 / (b - a) for a, b in itertools.pairwise(stamps)]  # the first step warms up
                cells.append(f"{statistics.median(rates):.2f} ({min(rates):.2f}-{max(rates):.2f})")
            print(f"{device} | {precision} | {cells[0]} | {cells[1]}", flush=True)
    return 0


def figures(args: argparse.Namespace) -> int:
    import stylegan_v

    from . import render as R
    from .projection import (
        FAST,
        baselines,
        frame_change,
        inception_available,
        inception_distance,
        project_images,
        project_video,
        psnr,
    )

    try:
        from training.procedural import draw_recipe, render_frame
    except ImportError:
        print("error: `figures` takes its held-out frames from training.procedural: run it from a checkout",
              file=sys.stderr)
        return 2
    if not inception_available():
        print("error: `figures` reports the Inception distance, which needs the metrics extra", file=sys.stderr)
        return 2
    torch.set_num_threads(args.threads)
    G = stylegan_v.load(args.checkpoint).eval().requires_grad_(False)
    r = G.img_resolution
    motion, t = R.MotionSeed(3), 4.0
    generated = torch.cat([R.render(G, R.sample_content(G, s, 1), motion, torch.tensor([t]))[:, 0]
                           for s in range(101, 101 + args.targets)])
    held_out = torch.stack([torch.from_numpy(render_frame(draw_recipe(HELD_OUT_SEED, i), 10.0, r)).permute(2, 0, 1)
                            for i in range(args.targets)]).float() / 127.5 - 1
    print(f"model {Path(args.checkpoint).name}, {args.targets} targets each, {args.steps} steps, t={t:g}, motion seed 3")
    print("target | method | PSNR dB (mean, min) | Inception distance (mean) | seconds")
    for name, targets in () if args.clips_only else (("generated", generated), ("held-out procedural", held_out)):
        for label, frames in baselines(G, targets, t, motion).items():
            p, d = psnr(frames, targets), inception_distance(frames, targets)
            print(f"{name} | {label} | {p.mean():.2f}, {p.min():.2f} | {d.mean():.4f} | -")
        for perceptual in ("none", "inception"):
            for latent in ("w", "w+"):
                config = replace(FAST, steps=args.steps, perceptual=perceptual, latent=latent)
                start = time.perf_counter()
                fit = project_images(G, targets, t=t, motion=motion, config=config)
                seconds = time.perf_counter() - start
                p, d = psnr(fit.frames, targets), inception_distance(fit.frames, targets)
                print(f"{name} | fit {latent}, perceptual {perceptual} | {p.mean():.2f}, {p.min():.2f} | "
                      f"{d.mean():.4f} | {seconds:.0f}", flush=True)
    print("clip | perceptual | mean PSNR dB (min) | change fit / target | continuation change / target | seconds")
    t_clip = R.timestamps(CLIP_FRAMES, G.model_config.dataset_fps, G.model_config.dataset_fps)
    for seed in range(201, 201 + args.clips):
        clip = R.render(G, R.sample_content(G, seed, 1), R.MotionSeed(seed), t_clip)[0]
        for perceptual in ("none", "inception"):
            start = time.perf_counter()
            fit = project_video(G, clip, G.model_config.dataset_fps, config=replace(FAST, steps=args.steps,
                                                                                      perceptual=perceptual))
            seconds = time.perf_counter() - start
            after = R.timestamps(3 * CLIP_FRAMES, G.model_config.dataset_fps, G.model_config.dataset_fps,
                                 start_time=CLIP_FRAMES / G.model_config.dataset_fps)
            continuation = R.render(G, fit.ws, fit.motion, after)[0]
            p = psnr(fit.frames, clip)
            print(f"seed {seed} | {perceptual} | {p.mean():.2f} ({p.min():.2f}) | "
                  f"{frame_change(fit.frames) / frame_change(clip):.2f} | "
                  f"{frame_change(continuation) / frame_change(clip):.2f} | {seconds:.0f}", flush=True)
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
    f.add_argument("--steps", type=int, default=150)
    f.add_argument("--targets", type=int, default=4)
    f.add_argument("--clips", type=int, default=2)
    f.add_argument("--threads", type=int, default=1)
    f.add_argument("--clips-only", action="store_true", help="measure the clips only")
    f.set_defaults(func=figures)
    args = p.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
