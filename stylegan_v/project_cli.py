"""`project` subcommand: fit latents to a picture or a clip, and write them as a latents file.

    python -m stylegan_v project --checkpoint FILE --image IMG.png --out LATENTS.safetensors
                                 [--steps N] [--time T] [--motion-seed M] [--class K]
    python -m stylegan_v project --checkpoint FILE --video CLIP.mp4 [--fps F] --out LATENTS.safetensors
    python -m stylegan_v project --checkpoint FILE --frames DIR/ [--fps F] --out LATENTS.safetensors

A picture gives content (ws [1, num_ws, w_dim]) and the motion it was fitted with (the seed
recipe): rendering that content with that motion at time T reproduces the picture. A clip
gives content and a fitted motion, which renders past the clip's end. --preview OUT.mp4
writes the target beside the fit: the clip (or the picture), then the continuation.

Images must be RGB (grayscale and images with an alpha channel are refused) and exactly the
model's size; --fit-size instead centre-crops them to a square and resizes that with Lanczos.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

from . import arguments as A
from .projection.config import LATENTS, PERCEPTUALS, PRECISIONS, PRESETS, VIDEO_PRESETS

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
MAX_CLIP_FRAMES = 256
PREVIEW_SECONDS = 3.0  # how long a picture's preview animates past the fitted instant
GRAY_MODES = ("1", "L", "I", "I;16", "F")
ALPHA_MODES = ("RGBA", "LA", "La", "RGBa", "PA")


HELP = "fit latents to a picture or a clip (image/video to video)"


def register(subparsers) -> argparse.ArgumentParser:
    """Add the `project` subcommand to an argparse subparsers object; returns its parser."""
    p = subparsers.add_parser("project", help=HELP, description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    arguments(p)
    return p


def arguments(p: argparse.ArgumentParser) -> None:
    """The `project` subcommand's arguments (the command line's `python -m stylegan_v project`)."""
    p.add_argument("--checkpoint", type=Path, help="our .safetensors or an original .pkl (default: the demo model)")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--image", type=Path, help="the picture to project (RGB, the model's size)")
    source.add_argument("--video", type=Path, help="a clip to project (2 frames or more)")
    source.add_argument("--frames", type=Path, help="a folder of frames (sorted by name) to project as a clip")
    p.add_argument("--fps", type=A.finite, help="frame rate of the clip (default: the video's own; for --frames, "
                                                  "the model's dataset fps)")
    p.add_argument("--out", type=Path, required=True, help="the latents file to write (.safetensors)")
    p.add_argument("--steps", type=int, help=f"optimiser steps (default: the preset's; fast: {PRESETS['fast'].steps} "
                                             f"for a picture, {VIDEO_PRESETS['fast'].steps} for a clip)")
    p.add_argument("--preset", choices=sorted(PRESETS), default="fast", help="fast (default) or quality")
    p.add_argument("--time", type=A.finite, default=0.0,
                   help="the instant, in seconds at the model's dataset fps, at which the picture is matched")
    p.add_argument("--motion-seed", type=int, default=0, help="seed of the motion the picture is matched with")
    p.add_argument("--class", dest="class_index", type=int, help="class, for class-conditional models")
    p.add_argument("--latent", choices=LATENTS, help="w (one vector) or w+ (one per layer; default)")
    p.add_argument("--perceptual", choices=PERCEPTUALS, help="the perceptual distance (default auto)")
    p.add_argument("--seed", type=int, default=0, help="seed of the search's random choices")
    p.add_argument("--max-frames", type=int, default=64, help=f"use at most this many frames of a clip (<= {MAX_CLIP_FRAMES})")
    p.add_argument("--fit-size", dest="resize", action="store_true", help="centre-crop to a square and resize (Lanczos) to the "
                                                         "model's size instead of refusing other sizes")
    p.add_argument("--precision", choices=PRECISIONS, default="float32",
                   help="float32, or bfloat16 autocast for the synthesis network")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda, cuda:1, ...")
    p.add_argument("--preview", type=Path, help="also write an mp4: target beside fit, then the continuation")
    p.set_defaults(func=run)


def _existing(path: Path, flag: str, folder: bool = False) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"{flag} {path}: no such {'folder' if folder else 'file'}")
    if folder and not path.is_dir():
        raise ValueError(f"{flag} {path} is not a folder")
    if not folder and not path.is_file():
        raise ValueError(f"{flag} {path} is not a regular file")
    return path


def _size_rule(width: int, height: int, resolution: int, what: str, resize: bool) -> None:
    if (width, height) != (resolution, resolution) and not resize:
        raise ValueError(f"{what} is {width}x{height}, but this model draws {resolution}x{resolution}: resize it to "
                         f"{resolution}x{resolution}, or pass --fit-size to centre-crop it to a square and resize")


def _square(image, resolution: int):
    from PIL import Image

    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    image = image.crop((left, top, left + side, top + side))
    return image if side == resolution else image.resize((resolution, resolution), Image.LANCZOS)


def read_image(path: Path, resolution: int, resize: bool = False, flag: str = "--image") -> torch.Tensor:
    """An RGB picture as raw [3, R, R] in [-1, 1]; grayscale, alpha and the wrong size are refused."""
    import numpy as np
    import torch
    from PIL import Image, UnidentifiedImageError

    _existing(path, flag)
    try:
        with Image.open(path) as image:
            image.load()
    except (UnidentifiedImageError, OSError) as e:
        raise ValueError(f"{flag} {path}: not an image Pillow can read ({e})") from None
    mode = image.mode
    if mode == "P":
        mode = "PA" if "transparency" in image.info else "RGB"
    if mode in GRAY_MODES:
        raise ValueError(f"{flag} {path} is a grayscale image (mode {image.mode}); the model needs RGB: "
                         "convert it to RGB first")
    if mode in ALPHA_MODES:
        raise ValueError(f"{flag} {path} has an alpha channel (mode {image.mode}); the model needs RGB without "
                         "transparency: flatten it onto a background first")
    _size_rule(*image.size, resolution, f"{flag} {path}", resize)
    image = _square(image.convert("RGB"), resolution)
    return torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1


def read_video(path: Path, resolution: int, max_frames: int, resize: bool = False) -> tuple[torch.Tensor, float]:
    """(frames [F, 3, R, R] raw, the file's frame rate) from a video file, refusing gray and alpha formats."""
    import av
    import numpy as np
    import torch
    from PIL import Image

    _existing(path, "--video")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError) as e:
        raise ValueError(f"--video {path}: not a video PyAV can read ({e})") from None
    with container:
        if not container.streams.video:
            raise ValueError(f"--video {path} holds no video stream")
        stream = container.streams.video[0]
        pix_fmt = stream.codec_context.pix_fmt or ""
        if pix_fmt.startswith(("gray", "ya", "monow", "monob")):
            raise ValueError(f"--video {path} is grayscale (pixel format {pix_fmt}); the model needs colour")
        if pix_fmt.startswith(("yuva", "rgba", "bgra", "argb", "abgr", "gbrap")):
            raise ValueError(f"--video {path} has an alpha channel (pixel format {pix_fmt}); the model needs "
                             "colour without transparency")
        rate = float(stream.average_rate or stream.guessed_rate or 0)
        frames = []
        for frame in container.decode(stream):
            if not frames:
                _size_rule(frame.width, frame.height, resolution, f"--video {path}", resize)
            image = _square(Image.fromarray(frame.to_ndarray(format="rgb24")), resolution)
            frames.append(torch.from_numpy(np.asarray(image, dtype=np.float32)).permute(2, 0, 1) / 127.5 - 1)
            if len(frames) == max_frames:
                break
    _check_clip(len(frames), f"--video {path}")
    return torch.stack(frames), rate


def read_frames(folder: Path, resolution: int, max_frames: int, resize: bool = False) -> torch.Tensor:
    import torch

    _existing(folder, "--frames", folder=True)
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    _check_clip(len(files), f"--frames {folder}")
    return torch.stack([read_image(p, resolution, resize, flag="--frames") for p in files[:max_frames]])


def _check_clip(count: int, what: str) -> None:
    if count < 2:
        raise ValueError(f"{what} has {count} frame{'' if count == 1 else 's'}; a clip needs at least 2 to show "
                         "motion (use --image for a single picture)")


def _check_args(args: argparse.Namespace) -> None:
    if args.steps is not None and not 1 <= args.steps <= 100_000:
        raise ValueError(f"--steps must be in 1..100000, got {args.steps}")
    if args.motion_seed < 0 or args.seed < 0:
        raise ValueError("--motion-seed and --seed must be >= 0")
    if args.time < 0:
        raise ValueError(f"--time must be >= 0 (the motion starts at 0), got {args.time:g}")
    if args.fps is not None and not args.fps > 0:
        raise ValueError(f"--fps must be positive, got {args.fps:g}")
    if args.fps is not None and args.image is not None:
        raise ValueError("--fps is for a clip (--video or --frames), not for --image")
    if not 2 <= args.max_frames <= MAX_CLIP_FRAMES:
        raise ValueError(f"--max-frames must be in 2..{MAX_CLIP_FRAMES}, got {args.max_frames}")
    for flag, path in (("--out", args.out), ("--preview", args.preview)):
        if path is not None and path.exists() and not path.is_file():
            raise ValueError(f"{flag} {path} exists and is not a regular file")
    if args.out.suffix.lower() != ".safetensors":
        raise ValueError(f"--out {args.out}: a latents file ends in .safetensors")


def _config(args: argparse.Namespace):
    from dataclasses import replace

    config = (PRESETS if args.image is not None else VIDEO_PRESETS)[args.preset]
    changes = {"seed": args.seed, "precision": args.precision}
    for name in ("steps", "latent", "perceptual"):
        if getattr(args, name) is not None:
            changes[name] = getattr(args, name)
    return replace(config, **changes)


def run(args: argparse.Namespace) -> int:
    """Run `project`; a refusal is one line on stderr starting 'error:', with exit status 2."""
    from .projection import PerceptualUnavailable

    try:
        return _run(args)
    except (ValueError, FileNotFoundError, PerceptualUnavailable) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import load
    from . import render as R
    from .latents import save_latents
    from .projection import dataset_fps_of, project_images, project_video, psnr

    _check_args(args)
    checkpoint = args.checkpoint or A.DEMO_CHECKPOINT
    _existing(checkpoint, "--checkpoint")
    device = A.device(args.device)
    # Read the input before the model loads: a bad picture is refused at once.
    from .checkpoint import read_config, resolve_checkpoint

    config_file = resolve_checkpoint(checkpoint)
    model_config, meta = read_config(config_file)
    resolution = model_config.generator.resolution
    if args.image is not None:
        target = read_image(args.image, resolution, args.resize)
    elif args.video is not None:
        clip, file_rate = read_video(args.video, resolution, args.max_frames, args.resize)
    else:
        clip, file_rate = read_frames(args.frames, resolution, args.max_frames, args.resize), None
    G = load(checkpoint, device=device).eval().requires_grad_(False)
    D = None
    config = _config(args)
    if config.perceptual == "discriminator":
        if "D" not in meta.get("nets", "").split(","):
            raise ValueError(f"--perceptual discriminator: {checkpoint.name} holds no discriminator (only "
                             f"{meta.get('nets', 'G_ema')}); use inception or none")
        D = load(checkpoint, net="D", device=device).eval().requires_grad_(False)
    if args.class_index is not None and G.c_dim == 0:
        raise ValueError("--class is for class-conditional models; this one is unconditional")
    if G.c_dim and args.class_index is None:
        raise ValueError(f"this model is class-conditional ({G.c_dim} classes): pass --class K")
    c = R.class_labels(G, 0, 1, args.class_index) if G.c_dim else None
    dataset_fps = dataset_fps_of(G)
    bar = tqdm(total=config.steps, desc="project", unit="step", disable=None, file=sys.stderr)

    def progress(p):
        bar.update(1)
        bar.set_postfix(psnr=f"{p.psnr:.1f}dB", refresh=False)

    common = {"checkpoint": checkpoint.name, "steps": str(config.steps), "preset": args.preset}
    with bar:
        if args.image is not None:
            t = args.time * dataset_fps
            motion = R.MotionSeed(args.motion_seed)
            result = project_images(G, target.unsqueeze(0), t=t, motion=motion, c=c, config=config,
                                    callback=progress, D=D, log=lambda m: tqdm.write(m, file=sys.stderr))
            quality = float(psnr(result.frames, target.unsqueeze(0))[0])
            save_latents(args.out, ws=result.ws, c=c, motion=motion, kind="image projection",
                         time_seconds=repr(args.time), model_time=repr(t), psnr_db=f"{quality:.2f}",
                         perceptual=result.perceptual, **common)
        else:
            fps = args.fps or file_rate or dataset_fps
            result = project_video(G, clip, fps, c=c, config=config, callback=progress, D=D,
                                   log=lambda m: tqdm.write(m, file=sys.stderr))
            quality = float(psnr(result.frames, clip).mean())
            save_latents(args.out, ws=result.ws, c=c, motion=result.motion, kind="video projection",
                         fps=repr(fps), frames=str(clip.shape[0]), psnr_db=f"{quality:.2f}",
                         perceptual=result.perceptual, **common)
    print(f"wrote {args.out}: PSNR {quality:.2f} dB")
    if args.preview is not None:
        count = _preview(G, result, target.unsqueeze(0) if args.image is not None else clip, c, dataset_fps, args)
        print(f"wrote {args.preview}: {count} frames (target | fit, then the continuation)")
    return 0


def _preview(G, result, targets: torch.Tensor, c, dataset_fps: float, args: argparse.Namespace) -> int:
    import torch

    from . import render as R
    from .video import write_mp4

    if args.image is not None:
        fps = dataset_fps
        t = R.timestamps(round(PREVIEW_SECONDS * fps), fps, dataset_fps, start_time=args.time)
    else:
        fps = result.fps
        t = R.timestamps(3 * targets.shape[0], fps, dataset_fps)
    frames = R.render(G, result.ws.to(next(G.parameters()).device), result.motion, t,
                      c=None if c is None else c.to(next(G.parameters()).device))[0]
    left = torch.full_like(frames, -1.0)
    left[:targets.shape[0]] = targets[:frames.shape[0]]
    if args.image is not None:
        left[:] = targets[0]  # the picture stays beside its animation
    pixels = R.to_uint8(torch.cat([left, frames], dim=-1))
    scale = max(1, 256 // G.img_resolution)
    pixels = pixels.repeat_interleave(scale, 1).repeat_interleave(scale, 2)
    return write_mp4(args.preview, [pixels], fps=fps)
