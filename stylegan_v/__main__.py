"""Command line: render a video, convert an original snapshot, describe a checkpoint.

    python -m stylegan_v render --checkpoint FILE --seed 1 --motion-seed 2 --fps 30 --seconds 10 --out out.mp4
    python -m stylegan_v convert network-snapshot.pkl model.safetensors
    python -m stylegan_v info FILE
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from pathlib import Path

import torch

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "stylegan_v_demo.safetensors"
MAX_FRAMES = 10_000_000


def _device(name: str) -> torch.device:
    """The device, refused with a ValueError when it is not a device name or is not present here."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name!r} is not a device name ({e})") from None
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (device.index or 0) >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here")
    return device


def _finite(text: str) -> float:
    """A float argument; NaN and infinity are refused (they would render NaN frames or overflow)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def _out_path(path: Path, follow_symlink: bool) -> Path:
    """The output file, refused before any work if it is a directory, a device, a FIFO, or an unasked-for link."""
    if path.is_symlink():
        if not follow_symlink:
            raise ValueError(f"--out {path} is a symbolic link; pass --follow-symlink to write to its target")
        path = path.resolve()
    if path.exists() and not path.is_file():
        raise ValueError(f"--out {path} exists and is not a regular file")
    return path


def _precision(name: str) -> str:
    """The library's name of a precision; fp16, bf16, fp32 and half are read too."""
    from .generator import PRECISIONS, parse_precision

    try:
        dtype = parse_precision(name)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return next(key for key, value in PRECISIONS.items() if value == dtype)


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import load
    from . import render as R
    from .limits import check_render_memory, max_seconds
    from .video import write_mp4

    if args.checkpoint is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise SystemExit(f"no --checkpoint given and the built-in demo model is missing ({DEFAULT_CHECKPOINT})")
        args.checkpoint = DEFAULT_CHECKPOINT
    if not args.fps > 0:
        raise ValueError(f"--fps must be positive, got {args.fps:g}")
    if args.frames is None and not 0 < args.seconds * args.fps <= MAX_FRAMES:
        raise ValueError(f"--seconds must be in (0, {MAX_FRAMES / args.fps:g}] at {args.fps:g} fps, "
                         f"got {args.seconds:g}")
    num_frames = args.frames if args.frames is not None else max(1, round(args.seconds * args.fps))
    if not 1 <= args.scale <= 16:
        raise ValueError(f"--scale must be 1..16, got {args.scale}")
    if not 1 <= num_frames <= MAX_FRAMES:
        raise ValueError(f"the video must have 1..{MAX_FRAMES} frames, got {num_frames}")
    for name in ("batch", "chunk"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.dataset_fps is not None and not args.dataset_fps > 0:
        raise ValueError(f"--dataset-fps must be positive, got {args.dataset_fps:g}")
    if args.start < 0 or args.speed < 0:
        raise ValueError("--start and --speed must be >= 0 (the motion starts at time 0)")
    out = _out_path(args.out, args.follow_symlink)
    device = _device(args.device)
    G = load(args.checkpoint, device=device)
    G.set_precision(args.precision)
    if args.class_index is not None and G.c_dim == 0:
        raise ValueError("--class-index is for class-conditional models; this one is unconditional")
    dataset_fps = args.dataset_fps or G.model_config.dataset_fps
    end = args.start + args.speed * (num_frames - 1) / args.fps
    if not end < max_seconds(dataset_fps):
        raise ValueError(f"the video ends at {end:.4g} s of model time, beyond the {max_seconds(dataset_fps):.4g} s "
                         f"(2^39 dataset frames at {dataset_fps:g} fps) the motion is exact to; lower --start, "
                         "--speed or the duration")
    chunk = min(args.chunk, num_frames)
    try:
        check_render_memory(G, args.batch, chunk, scale=args.scale, device=device)
    except MemoryError as e:
        raise ValueError(f"{e} (--chunk, --batch)") from None
    t = R.timestamps(num_frames, args.fps, dataset_fps, start_time=args.start, speed=args.speed)
    ws = R.sample_content(G, args.seed, args.batch, args.truncation, args.class_index, device=device)
    c = R.class_labels(G, args.seed, args.batch, args.class_index).to(device)
    motion = R.MotionSeed(args.motion_seed, args.batch)
    columns = math.ceil(math.sqrt(args.batch))
    # disable=None: a bar on a terminal, nothing in logs and pipes.
    progress = tqdm(total=num_frames, desc="render", unit="frame", disable=None)

    def batches():
        for _, frames in R.render_chunks(G, ws, motion, t, c=c, chunk_size=args.chunk):
            progress.update(frames.shape[1])
            pixels = R.to_uint8(R.grid(frames, columns))
            yield pixels.repeat_interleave(args.scale, 1).repeat_interleave(args.scale, 2).cpu()

    start = time.perf_counter()
    with progress:
        count = write_mp4(out, batches(), fps=args.fps, crf=args.crf,
                          metadata={"comment": json.dumps({"checkpoint": Path(args.checkpoint).name,
                                                           "seed": args.seed, "motion_seed": args.motion_seed,
                                                           "truncation_psi": args.truncation})})
    elapsed = time.perf_counter() - start
    print(f"wrote {args.out}: {count} frames at {args.fps:g} fps ({count / elapsed:.1f} frames/s)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import convert_pickle

    overrides = {k: v for k, v in {"motion_z_distance": args.motion_z_distance,
                                   "max_num_frames": args.max_num_frames,
                                   "dataset_fps": args.dataset_fps}.items() if v is not None}
    out = convert_pickle(args.snapshot, args.out, **overrides)
    print(f"wrote {out}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .checkpoint import read_config, resolve_checkpoint

    path = resolve_checkpoint(args.file)
    config, meta = read_config(path)
    from safetensors import safe_open

    counts: dict[str, int] = {}
    with safe_open(str(path), framework="pt") as f:
        for key in f.keys():
            net = key.split(".", 1)[0]
            counts[net] = counts.get(net, 0) + math.prod(f.get_slice(key).get_shape())
    info = {
        "file": str(args.file),
        "nets": {name: f"{n:,} values" for name, n in counts.items()},
        "dataset_fps": config.dataset_fps,
        "name": config.name,
        "generator": config.generator.__dict__,
        "discriminator": config.discriminator.__dict__ if "D" in counts else None,
        "provenance": json.loads(meta.get("provenance", "{}")),
    }
    print(json.dumps(info, indent=2, default=str))
    return 0


def parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m stylegan_v", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render an mp4 from a checkpoint")
    r.add_argument("--checkpoint", type=Path, help="our .safetensors or an original .pkl (default: the demo model)")
    r.add_argument("--seed", type=int, default=0, help="content seed")
    r.add_argument("--motion-seed", type=int, default=0, help="motion seed")
    r.add_argument("--fps", type=_finite, default=30.0, help="output frames per second")
    r.add_argument("--seconds", type=_finite, default=4.0, help="duration in seconds")
    r.add_argument("--frames", type=int, help="duration in frames (overrides --seconds)")
    r.add_argument("--start", type=_finite, default=0.0, help="start time in seconds")
    r.add_argument("--speed", type=_finite, default=1.0, help="playback speed (0.25 = 4x slow motion)")
    r.add_argument("--truncation", type=_finite, default=1.0, help="truncation psi for content")
    r.add_argument("--batch", type=int, default=1, help="number of videos, laid out as a grid")
    r.add_argument("--class-index", type=int, help="class for conditional models")
    r.add_argument("--chunk", type=int, default=16, help="frames per video rendered at once (memory)")
    r.add_argument("--crf", type=int, default=18, help="H.264 quality (0 lossless .. 51 worst)")
    r.add_argument("--scale", type=int, default=1,
                   help="enlarge each pixel to SCALE x SCALE (nearest; for viewing small models)")
    r.add_argument("--precision", default="float32", type=_precision, metavar="{float32,float16,bfloat16}",
                   help="precision of the top synthesis blocks (the original ran them in float16); "
                        "fp32, fp16 and bf16 are read too")
    r.add_argument("--dataset-fps", type=_finite, help="override the model's dataset fps")
    r.add_argument("--device", default="auto")
    r.add_argument("--out", type=Path, default=Path("out.mp4"),
                   help="the mp4 to write (replaced atomically; must be a regular file if it exists)")
    r.add_argument("--follow-symlink", action="store_true", help="if --out is a symbolic link, replace its target")
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("convert", help="convert an original .pkl snapshot to our safetensors format")
    c.add_argument("snapshot", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--motion-z-distance", type=int, help="if the snapshot does not record it")
    c.add_argument("--max-num-frames", type=int, help="if the snapshot does not record it")
    c.add_argument("--dataset-fps", type=_finite, help="if the snapshot does not record it")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("info", help="describe a checkpoint")
    i.add_argument("file", type=Path)
    i.set_defaults(func=cmd_info)
    return p


class _Parser(argparse.ArgumentParser):
    """Usage mistakes end like every other refusal: one line starting 'error:', exit status 2."""

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that writers remove their temporary files on the way out."""


def _on_sigterm(signum, frame):
    raise _Terminated


def _kept(args: argparse.Namespace) -> str:
    out = getattr(args, "out", None)
    return f"nothing written; {out} is as it was" if out is not None else "nothing written"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except OSError as e:  # a full disk, a permission: the atomic writer names the file and has removed its temp
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"interrupted: {_kept(args)}", file=sys.stderr)
        return 130
    except _Terminated:
        print(f"terminated: {_kept(args)}", file=sys.stderr)
        return 143
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
