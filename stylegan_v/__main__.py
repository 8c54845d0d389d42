"""Command line: render a video, convert an original snapshot, describe a checkpoint.

    python -m stylegan_v render --checkpoint FILE --seed 1 --motion-seed 2 --fps 30 --seconds 10 --out out.mp4
    python -m stylegan_v convert network-snapshot.pkl model.safetensors
    python -m stylegan_v info FILE
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

DEFAULT_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "stylegan_v_demo.safetensors"
MAX_FRAMES = 10_000_000


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


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
    from .video import write_mp4

    if args.checkpoint is None:
        if not DEFAULT_CHECKPOINT.is_file():
            raise SystemExit(f"no --checkpoint given and the built-in demo model is missing ({DEFAULT_CHECKPOINT})")
        args.checkpoint = DEFAULT_CHECKPOINT
    device = _device(args.device)
    G = load(args.checkpoint, device=device)
    G.set_precision(args.precision)
    dataset_fps = args.dataset_fps or G.model_config.dataset_fps
    num_frames = args.frames if args.frames is not None else round(args.seconds * args.fps)
    if not 1 <= args.scale <= 16:
        raise SystemExit(f"--scale must be 1..16, got {args.scale}")
    if not 1 <= num_frames <= MAX_FRAMES:
        raise SystemExit(f"the video must have 1..{MAX_FRAMES} frames, got {num_frames}")
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
        count = write_mp4(args.out, batches(), fps=args.fps, crf=args.crf,
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
    p = argparse.ArgumentParser(prog="python -m stylegan_v", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("render", help="render an mp4 from a checkpoint")
    r.add_argument("--checkpoint", type=Path, help="our .safetensors or an original .pkl (default: the demo model)")
    r.add_argument("--seed", type=int, default=0, help="content seed")
    r.add_argument("--motion-seed", type=int, default=0, help="motion seed")
    r.add_argument("--fps", type=float, default=30.0, help="output frames per second")
    r.add_argument("--seconds", type=float, default=4.0, help="duration in seconds")
    r.add_argument("--frames", type=int, help="duration in frames (overrides --seconds)")
    r.add_argument("--start", type=float, default=0.0, help="start time in seconds")
    r.add_argument("--speed", type=float, default=1.0, help="playback speed (0.25 = 4x slow motion)")
    r.add_argument("--truncation", type=float, default=1.0, help="truncation psi for content")
    r.add_argument("--batch", type=int, default=1, help="number of videos, laid out as a grid")
    r.add_argument("--class-index", type=int, help="class for conditional models")
    r.add_argument("--chunk", type=int, default=16, help="frames per video rendered at once (memory)")
    r.add_argument("--crf", type=int, default=18, help="H.264 quality (0 lossless .. 51 worst)")
    r.add_argument("--scale", type=int, default=1,
                   help="enlarge each pixel to SCALE x SCALE (nearest; for viewing small models)")
    r.add_argument("--precision", default="float32", type=_precision, metavar="{float32,float16,bfloat16}",
                   help="precision of the top synthesis blocks (the original ran them in float16); "
                        "fp32, fp16 and bf16 are read too")
    r.add_argument("--dataset-fps", type=float, help="override the model's dataset fps")
    r.add_argument("--device", default="auto")
    r.add_argument("--out", type=Path, default=Path("out.mp4"))
    r.set_defaults(func=cmd_render)

    c = sub.add_parser("convert", help="convert an original .pkl snapshot to our safetensors format")
    c.add_argument("snapshot", type=Path)
    c.add_argument("out", type=Path)
    c.add_argument("--motion-z-distance", type=int, help="if the snapshot does not record it")
    c.add_argument("--max-num-frames", type=int, help="if the snapshot does not record it")
    c.add_argument("--dataset-fps", type=float, help="if the snapshot does not record it")
    c.set_defaults(func=cmd_convert)

    i = sub.add_parser("info", help="describe a checkpoint")
    i.add_argument("file", type=Path)
    i.set_defaults(func=cmd_info)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
