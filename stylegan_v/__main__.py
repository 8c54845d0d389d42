"""Command line: render a video, convert an original snapshot, describe a checkpoint, project a picture or clip.

    python -m stylegan_v render --seed 1 --motion-seed 2 --fps 30 --seconds 10 --out out.mp4
    python -m stylegan_v render --checkpoint model.safetensors --batch 4 --out grid.mp4
    python -m stylegan_v convert network-snapshot.pkl model.safetensors
    python -m stylegan_v info model.safetensors
    python -m stylegan_v project --image picture.png --out latents.safetensors

Without --checkpoint, render uses the built-in 32x32 demo model. Errors are one line
starting 'error:'; bad arguments exit with status 2. A missing output folder is
created, with a note saying so.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# torch and the networks are imported inside the commands: --help and usage errors must not wait for them.
from . import arguments as A
from . import project_cli, resize

MAX_FRAMES = 10_000_000


def _out_path(path: Path, follow_symlink: bool, flag: str = "--out") -> Path:
    """The output file, refused before any work if it is a directory, a device, a FIFO, or an unasked-for link."""
    if path.is_symlink():
        if not follow_symlink:
            raise ValueError(f"{flag} {path} is a symbolic link; pass --follow-symlink to write to its target")
        path = path.resolve()
    if path.exists() and not path.is_file():
        raise ValueError(f"{flag} {path} exists and is not a regular file")
    return path


class _Folders:
    """The output folders a command created, so that a command that then fails leaves none behind."""

    def __init__(self):
        self.created: list[Path] = []

    def make_parent(self, path: Path) -> None:
        """Create `path`'s missing folders, with a note on stderr naming them."""
        missing = [p for p in [path.parent, *path.parent.parents] if not p.exists()]
        if not missing:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        self.created = missing  # deepest first
        print(f"note: created the folder {missing[0]}", file=sys.stderr)

    def remove_if_empty(self) -> None:
        for folder in self.created:
            try:
                folder.rmdir()
            except OSError:
                break  # not empty (something else wrote there) or gone: leave it and its parents


def cmd_render(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from . import load
    from . import render as R
    from .limits import check_render_memory, max_seconds
    from .video import write_mp4

    if args.checkpoint is None:
        if not A.DEMO_CHECKPOINT.is_file():
            raise ValueError(f"no --checkpoint given and the built-in demo model is missing ({A.DEMO_CHECKPOINT})")
        args.checkpoint = A.DEMO_CHECKPOINT
    if args.frames is None and not args.seconds * args.fps <= MAX_FRAMES:
        raise ValueError(f"--seconds must be at most {MAX_FRAMES / args.fps:g} at {args.fps:g} fps, "
                         f"got {args.seconds:g}")
    num_frames = args.frames if args.frames is not None else max(1, round(args.seconds * args.fps))
    out = _out_path(args.out, args.follow_symlink)
    device = A.device(args.device)
    G = load(args.checkpoint, device=device)
    G.set_precision(args.precision)
    if args.compile:
        from .compiled import compile_synthesis

        note = compile_synthesis(G, device)
        if note:
            print(note, file=sys.stderr)
    if args.class_index is not None and G.c_dim == 0:
        raise ValueError("--class-index is for class-conditional models; this one is unconditional")
    scale = args.scale if args.scale is not None else resize.default_scale(G.img_resolution)
    dataset_fps = args.dataset_fps or G.model_config.dataset_fps
    end = args.start + args.speed * (num_frames - 1) / args.fps
    if not end < max_seconds(dataset_fps):
        raise ValueError(f"the video ends at {end:.4g} s of model time, beyond the {max_seconds(dataset_fps):.4g} s "
                         f"(2^39 dataset frames at {dataset_fps:g} fps) the motion is exact to; lower --start, "
                         "--speed or the duration")
    chunk = min(args.chunk, num_frames)
    try:
        check_render_memory(G, args.batch, chunk, scale=scale, device=device)
    except MemoryError as e:
        raise ValueError(f"{e} (--chunk, --batch, --scale)") from None
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
            yield R.to_uint8(R.grid(resize.enlarge(frames, scale, args.resize), columns)).cpu()

    args.folders.make_parent(out)
    start = time.perf_counter()
    with progress:
        count = write_mp4(out, batches(), fps=args.fps, crf=args.crf,
                          metadata={"comment": json.dumps({"checkpoint": Path(args.checkpoint).name,
                                                           "seed": args.seed, "motion_seed": args.motion_seed,
                                                           "truncation_psi": args.truncation})})
    elapsed = time.perf_counter() - start
    side = G.img_resolution * scale
    print(f"wrote {args.out}: {count} frames at {args.fps:g} fps, {args.batch} video(s) of {side}x{side} "
          f"({G.img_resolution} px x {scale}, {args.resize if scale > 1 else 'not enlarged'}; "
          f"{count / elapsed:.1f} frames/s)")
    return 0


def cmd_convert(args: argparse.Namespace) -> int:
    from .checkpoint import convert_pickle

    if not args.snapshot.is_file():
        raise FileNotFoundError(f"snapshot not found: {args.snapshot}")
    out = _out_path(args.out, follow_symlink=False, flag="out")
    overrides = {k: v for k, v in {"motion_z_distance": args.motion_z_distance,
                                   "max_num_frames": args.max_num_frames,
                                   "dataset_fps": args.dataset_fps}.items() if v is not None}
    args.folders.make_parent(out)
    written = convert_pickle(args.snapshot, out, **overrides)
    print(f"wrote {written}")
    return 0


def cmd_info(args: argparse.Namespace) -> int:
    from .checkpoint import open_safetensors, read_config, resolve_checkpoint

    path = resolve_checkpoint(args.file)
    config, meta = read_config(path)
    counts: dict[str, int] = {}
    with open_safetensors(path) as f:
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


def _render_arguments(r: argparse.ArgumentParser) -> None:
    r.add_argument("--checkpoint", type=Path, help="our .safetensors or an original .pkl (default: the built-in "
                                                   "32x32 demo model)")
    r.add_argument("--seed", type=int, default=0, help="content seed")
    r.add_argument("--motion-seed", type=int, default=0, help="motion seed")
    r.add_argument("--fps", type=A.positive, default=30.0, help="output frames per second")
    r.add_argument("--seconds", type=A.positive, default=4.0, help="duration in seconds")
    r.add_argument("--frames", type=A.integer(1, MAX_FRAMES), help="duration in frames, instead of --seconds")
    r.add_argument("--start", type=A.nonnegative, default=0.0, help="start time in seconds")
    r.add_argument("--speed", type=A.nonnegative, default=1.0, help="playback speed (0.25 = 4x slow motion)")
    r.add_argument("--truncation", type=A.finite, default=1.0, help="truncation psi for content")
    r.add_argument("--batch", type=A.integer(1), default=1, help="number of videos, laid out as a grid")
    r.add_argument("--class-index", type=A.integer(0), help="class for conditional models")
    r.add_argument("--chunk", type=A.integer(1), default=16, help="frames per video rendered at once (memory)")
    r.add_argument("--crf", type=A.integer(0, 51), default=18, help="H.264 quality (0 lossless .. 51 worst)")
    r.add_argument("--scale", type=A.integer(1, resize.MAX_SCALE),
                   help=f"enlarge each video SCALE times (default: the smallest factor that makes it at least "
                        f"{resize.MIN_VIEW_SIZE} px; 1 keeps the model's size)")
    r.add_argument("--resize", choices=resize.FILTERS, default=resize.DEFAULT_FILTER,
                   help="how --scale enlarges: bicubic and bilinear are smooth, nearest shows the model's pixels "
                        "as blocks")
    r.add_argument("--precision", default="float32", type=A.precision, metavar="{float32,float16,bfloat16}",
                   help="precision of the top synthesis blocks (the original ran them in float16); "
                        "fp32, fp16 and bf16 are read too")
    r.add_argument("--compile", action="store_true",
                   help="torch.compile the synthesis network: the first run compiles for minutes (kept in a "
                        "cache for the next), then renders faster; eager, with a note, where no C++ compiler is "
                        "found")
    r.add_argument("--dataset-fps", type=A.positive, help="the model's dataset fps, if its file is wrong "
                                                          "(default: the file's)")
    r.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or mps; auto is CUDA when present")
    r.add_argument("--out", type=Path, default=Path("out.mp4"),
                   help="the mp4 to write (replaced atomically; must be a regular file if it exists)")
    r.add_argument("--follow-symlink", action="store_true", help="if --out is a symbolic link, replace its target")


def _convert_arguments(c: argparse.ArgumentParser) -> None:
    c.add_argument("snapshot", type=Path, help="an original network-snapshot-*.pkl")
    c.add_argument("out", type=Path, help="the .safetensors file to write")
    c.add_argument("--motion-z-distance", type=A.integer(1), help="if the snapshot does not record it")
    c.add_argument("--max-num-frames", type=A.integer(1), help="if the snapshot does not record it")
    c.add_argument("--dataset-fps", type=A.positive, help="if the snapshot does not record it")


def _info_arguments(i: argparse.ArgumentParser) -> None:
    i.add_argument("file", type=Path, help="our .safetensors or an original .pkl")


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, one line of help, what adds its arguments, and what runs it."""

    name: str
    help: str
    arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# The subcommands in the order --help lists them; a new one is one more entry.
COMMANDS: list[Command] = [
    Command("render", "render an mp4 from a checkpoint", _render_arguments, cmd_render),
    Command("convert", "convert an original .pkl snapshot to our safetensors format", _convert_arguments,
            cmd_convert),
    Command("info", "describe a checkpoint", _info_arguments, cmd_info),
    Command("project", project_cli.HELP, project_cli.arguments, project_cli.run),
]


def parser() -> argparse.ArgumentParser:
    p = A.Parser(prog="python -m stylegan_v", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="{" + ",".join(c.name for c in COMMANDS) + "}")
    for command in COMMANDS:
        cp = sub.add_parser(command.name, help=command.help, description=command.help[0].upper() + command.help[1:]
                            + ".", formatter_class=A.HelpFormatter)
        command.arguments(cp)
        cp.set_defaults(func=command.run)
    return p


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that writers remove their temporary files on the way out."""


def _on_sigterm(signum, frame):
    raise _Terminated


def _kept(args: argparse.Namespace) -> str:
    out = getattr(args, "out", None)
    return f"nothing written; {out} is as it was" if out is not None else "nothing written"


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.folders = _Folders()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if threading.current_thread() is threading.main_thread() \
        else None
    try:
        try:
            return args.func(args)
        except BaseException:
            args.folders.remove_if_empty()  # a failed command leaves no empty folder of its own making
            raise
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
