"""Rendering benchmark: frames/s, model FLOP utilisation and peak memory.

    python -m stylegan_v.benchmark                        # CUDA if present: 256x256 and 1024x1024
    python -m stylegan_v.benchmark --device cpu           # 256x256 only: 1024x1024 takes ~15 min, ~10 GiB
    python -m stylegan_v.benchmark --device cpu --preset ffs256,mead1024 --batch-sizes 1,4 --precisions float32
    python -m stylegan_v.benchmark --device cpu --compare nchw,channels-last --batch-sizes 1 --frames 8
    python -m stylegan_v.benchmark --device cpu --compare chunk=4,chunk=32 --frames 32 --rounds 5

Times the renderer's hot path (motion window + synthesis) with random weights;
the numbers do not depend on the weights. Prints one table: frames/s, or with --compare
the same-run ratio of two configurations timed alternately.
"""

from __future__ import annotations

import copy
import resource
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch

from . import arguments as A
from . import render as R
from .compiled import compile_synthesis
from .config import PRESETS, preset
from .generator import Generator, inference_memory_format

# On a CPU one 1024x1024 row takes many minutes and ~10 GiB, so it is asked for by name there.
DEFAULT_PRESETS = {"cuda": ("ffs256", "mead1024"), "cpu": ("ffs256",)}

# Dense peak throughput (TFLOP/s) for MFU; matmul-class peaks from vendor tables.
PEAK_TFLOPS = {"H100": {"float32": 67, "bfloat16": 989, "float16": 989},
               "H200": {"float32": 67, "bfloat16": 989, "float16": 989},
               "A100": {"float32": 19.5, "bfloat16": 312, "float16": 312}}


def flops_per_frame(G: Generator) -> float:
    """Model FLOPs of one frame, counted by torch's own FLOP counter (2 per multiply-add)."""
    from torch.utils.flop_counter import FlopCounterMode

    ws = torch.zeros(1, G.num_ws, G.w_dim, device=next(G.parameters()).device)
    motion_v = torch.zeros(1, G.cfg.motion_v_dim, device=ws.device)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        G.synthesis.frames(ws, motion_v, force_fp32=True)
    return float(counter.get_total_flops())


def peak_tflops(device: torch.device, precision: str) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    for key, table in PEAK_TFLOPS.items():
        if key in name:
            return table[precision]
    return None


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(G: Generator, batch: int, frames: int, chunk: int, device: torch.device, repeats: int) -> tuple[float, int]:
    ws = R.sample_content(G, seed=0, batch_size=batch, device=device)
    c = R.class_labels(G, seed=0, batch_size=batch).to(device)  # conditional models (MEAD 1024) need labels
    motion = R.MotionSeed(seed=0, batch_size=batch)
    t = R.timestamps(frames, fps=30, dataset_fps=30)
    for _ in R.render_chunks(G, ws, motion, t[:chunk], c=c, chunk_size=chunk):  # warm-up
        pass
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    _sync(device)
    start = time.perf_counter()
    for _ in range(repeats):
        for _ in R.render_chunks(G, ws, motion, t, c=c, chunk_size=chunk):
            pass
    _sync(device)
    elapsed = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated(device) if device.type == "cuda" else \
        resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return batch * frames * repeats / elapsed, peak


def _unchanged(G: Generator) -> Generator:
    return G


@dataclass(frozen=True)
class Variant:
    """A configuration `--compare` can time: what is done to a fresh copy of the generator, and how
    the renderer is called (frames per chunk, torch threads; None keeps the benchmark's own)."""

    prepare: Callable[[Generator], Generator] = _unchanged
    chunk: int | None = None
    threads: int | None = None


def _compiled(G: Generator) -> Generator:
    note = compile_synthesis(G, next(G.parameters()).device)
    if note:
        raise RuntimeError(note.removeprefix("note: "))  # a comparison with eager under another name is no comparison
    return G


# Every speed claim in this project is a same-run ratio of two of these (or of a parametric one below).
VARIANTS: dict[str, Variant] = {
    "nchw": Variant(lambda G: G.to(memory_format=torch.contiguous_format)),
    "channels-last": Variant(lambda G: G.to(memory_format=torch.channels_last)),
    "compiled": Variant(_compiled),
    "float32": Variant(lambda G: G.set_precision("float32")),
    "bfloat16": Variant(lambda G: G.set_precision("bfloat16")),  # the top blocks, as --precision bfloat16 renders
    "float16": Variant(lambda G: G.set_precision("float16")),
}
# name=N: the benchmark's generator with one renderer setting changed.
PARAMETRIC = {"chunk": "frames per video per chunk", "threads": "torch threads while timed"}


def variant(spec: str) -> Variant:
    """A `--compare` configuration: a name from VARIANTS, or chunk=N / threads=N."""
    name, _, value = spec.partition("=")
    if value and name in PARAMETRIC:
        return Variant(**{name: A.integer(1)(value)})
    if spec in VARIANTS:
        return VARIANTS[spec]
    raise ValueError(f"unknown configuration {spec!r}; choose from {', '.join(VARIANTS)}, "
                     + ", ".join(f"{k}=N ({v})" for k, v in PARAMETRIC.items()))


def _measure_variant(G: Generator, v: Variant, batch: int, frames: int, chunk: int, device: torch.device) -> float:
    threads = torch.get_num_threads()
    if v.threads:
        torch.set_num_threads(v.threads)
    try:
        fps, _ = measure(G, batch, frames, v.chunk or chunk, device, repeats=1)
    finally:
        torch.set_num_threads(threads)
    return fps


def compare(G: Generator, specs: tuple[str, str], batch: int, frames: int, chunk: int, device: torch.device,
            rounds: int) -> list[float]:
    """Per-round frames/s ratios second/first, the two configurations timed alternately."""
    variants = [variant(spec) for spec in specs]
    models = [v.prepare(copy.deepcopy(G)) for v in variants]
    ratios = []
    for _ in range(rounds):
        a, b = (_measure_variant(m, v, batch, frames, chunk, device) for m, v in zip(models, variants))
        ratios.append(b / a)
    return ratios


def _configuration(spec: str) -> str:
    variant(spec)  # refused at parse time, before anything is built
    return spec


def parser() -> A.Parser:
    p = A.Parser(prog="python -m stylegan_v.benchmark", description=__doc__)
    p.add_argument("--preset", type=A.csv(A.one_of(PRESETS.keys, "preset")),
                   help="comma-separated model presets, one table (default: "
                        + "; ".join(f"{','.join(v)} on {k.upper()}" for k, v in DEFAULT_PRESETS.items()) + ")")
    p.add_argument("--device", default="auto", help="cpu, cuda or cuda:N; auto is CUDA when present")
    p.add_argument("--batch-sizes", type=A.csv(A.integer(1)), default=(1, 4, 16), metavar="N[,N...]",
                   help="videos rendered at once, one row each (default: 1,4,16)")
    p.add_argument("--precisions", type=A.csv(A.precision), metavar="P[,P...]",
                   help="from float32, float16, bfloat16 (or fp32, fp16, bf16) (default: float32 on CPU; "
                        "float32,bfloat16,float16 on CUDA)")
    p.add_argument("--frames", type=A.integer(1), default=16, help="frames per video per repeat")
    p.add_argument("--chunk", type=A.integer(1), default=16, help="frames per video rendered at once")
    p.add_argument("--repeats", type=A.integer(1), default=2, help="timed passes over the frames")
    p.add_argument("--compare", type=A.csv(_configuration), metavar="A,B",
                   help=f"instead of the table, time two of {', '.join(VARIANTS)}, "
                        + ", ".join(f"{k}=N ({v})" for k, v in PARAMETRIC.items())
                        + " alternately and print the median frames/s ratio B/A with its min-max")
    p.add_argument("--rounds", type=A.integer(1), default=5, help="alternations for --compare")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    try:
        device = A.device(args.device)
    except ValueError as e:
        p.error(str(e))
    if args.compare is not None and len(args.compare) != 2:
        p.error(f"--compare takes two configurations, got {len(args.compare)}")
    presets = args.preset or DEFAULT_PRESETS["cuda" if device.type == "cuda" else "cpu"]
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    precisions = args.precisions or (("float32", "bfloat16", "float16") if device.type == "cuda" else ("float32",))
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"# {name}, torch {torch.__version__}, {args.frames} frames x {args.repeats} repeats per row", flush=True)
    if args.compare:
        return _print_comparison(args, presets, precisions, device)
    print(f"{'model':>10} {'GFLOP/f':>8} {'precision':>10} {'batch':>6} {'frames/s':>10} {'TFLOP/s':>9} {'MFU':>7} "
          f"{'peak mem':>10}")
    for preset_name in presets:
        G = _generator(preset_name, device)
        gflop = flops_per_frame(G) / 1e9
        model = f"{G.img_resolution}x{G.img_resolution}"
        for precision in precisions:
            G.set_precision(precision)
            precision = G.precision  # the library's name, whichever spelling was asked for (fp16, bf16...)
            for batch in args.batch_sizes:
                row = f"{model:>10} {gflop:8.1f} {precision:>10} {batch:>6}"
                try:
                    fps, peak = measure(G, batch, args.frames, args.chunk, device, args.repeats)
                except torch.cuda.OutOfMemoryError:
                    print(f"{row} {'OOM':>10}", flush=True)
                    torch.cuda.empty_cache()
                    continue
                tflops = fps * gflop / 1e3
                peak_t = peak_tflops(device, precision)
                mfu = f"{100 * tflops / peak_t:6.1f}%" if peak_t else "     -"
                print(f"{row} {fps:10.2f} {tflops:9.3f} {mfu:>7} {peak / 2**30:8.2f}GiB"
                      + ("" if device.type == "cuda" else " (RSS)"), flush=True)
        del G
    return 0


def _generator(preset_name: str, device: torch.device) -> Generator:
    """Random weights of a preset, in the layout loading gives a model on `device`."""
    torch.manual_seed(0)
    G = Generator(preset(preset_name).generator).eval().requires_grad_(False).to(device)
    return G.to(memory_format=inference_memory_format(device))


def _print_comparison(args, presets, precisions, device: torch.device) -> int:
    a, b = args.compare
    print(f"{'model':>10} {'precision':>10} {'batch':>6} {f'{b} / {a} frames/s':>32}  (median, min-max of "
          f"{args.rounds} alternated rounds)")
    for preset_name in presets:
        G = _generator(preset_name, device)
        for precision in precisions:
            G.set_precision(precision)
            for batch in args.batch_sizes:
                ratios = compare(G, (a, b), batch, args.frames, args.chunk, device, args.rounds)
                print(f"{f'{G.img_resolution}x{G.img_resolution}':>10} {G.precision:>10} {batch:>6} "
                      f"{statistics.median(ratios):32.2f}  ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
