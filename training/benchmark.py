"""Training speed of a preset: sec/kimg, kimg/s, MFU, peak memory (compute only, synthetic real clips).

    python -m training.benchmark --preset ffs256 [--batch 16] [--iters 20] [--warmup 5]
                                 [--device cuda] [--precision fp32,bf16] [--compile | --no-compile]
    python -m training.benchmark --preset tiny32 --device cpu --compare float32,bfloat16 --iters 2 --rounds 5

Runs the real training step (Gmain, Dmain, lazy R1 every 16 iterations, EMA,
ADA) on random clips, so data loading is excluded. kimg counts frames, as in
training. MFU uses the layer-shape FLOP model in training.flops against the
device's dense bf16 peak (or --peak-tflops).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import torch

from stylegan_v import arguments as A
from stylegan_v.config import ModelConfig
from training.presets import TRAIN_PRESETS, train_preset


def _synthetic_clips(trainer, seed: int, pool: int = 4):
    """Endless collated batches shaped like the data loader's: a few random ones, drawn once
    (and pinned on CUDA, as the loader's are) so that host work does not enter the timing."""
    g = trainer.model.generator
    f = trainer.model.discriminator.num_frames
    gen = torch.Generator().manual_seed(seed)
    n = trainer.batch_gpu
    pin = trainer.device.type == "cuda"
    batches = []
    for _ in range(pool):
        frames = torch.randint(0, 256, (n, f, g.img_channels, g.resolution, g.resolution), dtype=torch.uint8,
                               generator=gen)
        gaps = torch.sort(torch.randperm(8, generator=gen)[:f]).values
        times = gaps.repeat(n, 1)
        label = torch.zeros(n, g.c_dim)
        if g.c_dim:
            label[torch.arange(n), torch.randint(0, g.c_dim, (n,), generator=gen)] = 1
        batch = {"frames": frames, "label": label, "times": times}
        batches.append({k: v.pin_memory() for k, v in batch.items()} if pin else batch)
    while True:
        yield from batches


@dataclass(frozen=True)
class BenchConfig:
    """One training configuration to time. None means the trainer's default for the device."""

    preset: str
    batch: int | None = None          # videos per iteration (default: the preset's)
    batch_gpu: int | None = None      # videos per forward pass (default: the whole batch)
    device: str | None = None
    precision: str | None = None
    loss_scaling: bool = False        # dynamic loss scaling (float16 only)
    compile: bool | None = None
    channels_last: bool | None = None
    threads: int | None = None        # torch threads (default: the trainer's choice for the cores)
    aug: str = "ada"
    p: float = 0.2
    model: ModelConfig | None = None  # None: the preset's model (e.g. D seeing fewer frames per clip)
    peak_tflops: float | None = None


@contextlib.contextmanager
def bench_trainer(config: BenchConfig) -> Iterator:
    """A Trainer for `config` on a throwaway two-video dataset (it exists only so the trainer can be built)."""
    from training import distributed
    from training.loop import RunOptions, Trainer

    train = train_preset(config.preset).with_overrides(batch=config.batch, augment=config.aug, augment_p=config.p)
    model = config.model or train.model_config()
    with tempfile.TemporaryDirectory(prefix="sgv-bench-") as tmp:
        _write_data(f"{tmp}/data", model.generator.resolution, model.generator.c_dim)
        opts = RunOptions(data=f"{tmp}/data", outdir=f"{tmp}/run", train=train, model=config.model,
                          device=config.device, precision=config.precision, loss_scaling=config.loss_scaling,
                          compile=config.compile, channels_last=config.channels_last, threads=config.threads,
                          batch_gpu=config.batch_gpu, peak_tflops=config.peak_tflops, workers=0, sample_kimg=0,
                          tensorboard=False)
        trainer = Trainer(opts, distributed.init(config.device))
        trainer.log.close()
        yield trainer


def time_steps(trainer, clips, iters: int) -> float:
    """Seconds for `iters` training steps, with the trainer's thread count (another trainer may have
    changed the process's in between)."""
    torch.set_num_threads(trainer.threads)
    cuda = trainer.device.type == "cuda"
    if cuda:
        torch.cuda.synchronize(trainer.device)
    start = time.perf_counter()
    for _ in range(iters):
        trainer.train_step(clips)
    if cuda:
        torch.cuda.synchronize(trainer.device)
    return time.perf_counter() - start


def figures(trainer, seconds: float, iters: int) -> dict:
    frames = iters * trainer.train.batch * trainer.model.discriminator.num_frames
    flops = trainer.cost.per_iteration * iters / seconds
    cuda = trainer.device.type == "cuda"
    return {
        "trainer": trainer, "model": trainer.model, "cuda": cuda,
        "ms_per_iter": seconds / iters * 1000, "sec_per_kimg": seconds / (frames / 1000),
        "tflops": flops / 1e12, "mfu": flops / trainer.peak if trainer.peak else None,
        "mem_gib": (torch.cuda.max_memory_allocated(trainer.device) / 2**30 if cuda
                    else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20),
    }


def measure(config: BenchConfig, iters: int, warmup: int) -> dict:
    """One configuration: build a trainer, warm up (compile, cudnn autotune), time `iters` steps."""
    with bench_trainer(config) as trainer:
        clips = _synthetic_clips(trainer, seed=0)
        time_steps(trainer, clips, warmup)
        if trainer.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(trainer.device)
        return figures(trainer, time_steps(trainer, clips, iters), iters)


# Configurations `--compare` times against each other: each changes the command line's configuration.
VARIANTS: dict[str, Callable[[BenchConfig], BenchConfig]] = {
    "float32": lambda c: dataclasses.replace(c, precision="float32", loss_scaling=False),
    "bfloat16": lambda c: dataclasses.replace(c, precision="bfloat16", loss_scaling=False),
    "float16": lambda c: dataclasses.replace(c, precision="float16", loss_scaling=True),  # as one trains in it
    "channels-last": lambda c: dataclasses.replace(c, channels_last=True),
    "nchw": lambda c: dataclasses.replace(c, channels_last=False),
    "compiled": lambda c: dataclasses.replace(c, compile=True),
    "eager": lambda c: dataclasses.replace(c, compile=False),
    "threads=1": lambda c: dataclasses.replace(c, threads=1),
    "threads=2": lambda c: dataclasses.replace(c, threads=2),
}


def compare(config: BenchConfig, names: tuple[str, str], iters: int, warmup: int, rounds: int,
            built: Callable[[object], None] | None = None) -> list[float]:
    """Per-round kimg/s ratios second/first: both trainers built and warmed up, then timed alternately.
    `built(first trainer)` is called once both exist (the caller's title)."""
    with contextlib.ExitStack() as stack:
        trainers = [stack.enter_context(bench_trainer(VARIANTS[name](config))) for name in names]
        if built:
            built(trainers[0])
        clips = [_synthetic_clips(trainer, seed=0) for trainer in trainers]
        for trainer, batches in zip(trainers, clips):
            time_steps(trainer, batches, warmup)
        ratios = []
        for _ in range(rounds):
            a, b = (time_steps(trainer, batches, iters) for trainer, batches in zip(trainers, clips))
            ratios.append(a / b)  # the same frames per step in both: a time ratio a/b is B's speed over A's
        return ratios


def parser() -> A.Parser:
    p = A.Parser(prog="python -m training.benchmark", description=__doc__.split("\n\n")[0])
    p.add_argument("--preset", required=True, type=A.one_of(TRAIN_PRESETS.keys, "preset"),
                   help="training preset: " + ", ".join(sorted(TRAIN_PRESETS)))
    p.add_argument("--batch", type=A.integer(1), help="videos per iteration (default: the preset's)")
    p.add_argument("--batch-gpu", type=A.integer(1), help="videos per forward pass (default: --batch)")
    p.add_argument("--iters", type=A.integer(1), default=20, help="timed iterations")
    p.add_argument("--warmup", type=A.integer(0), default=5, help="untimed iterations first (compile, cudnn "
                                                                    "autotune)")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda when available")
    p.add_argument("--precision", type=A.csv(A.precision), metavar="P[,P...]",
                   help="comma-separated from float32, bfloat16, float16 (or fp32, bf16, fp16): one row each "
                        "(default: the trainer's for the device, bfloat16 on CUDA, float32 on CPU)")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the main passes (default: on for CUDA)")
    p.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=None,
                   help="NHWC activations (default: on for CUDA)")
    p.add_argument("--aug", choices=("ada", "fixed", "none"), default="ada", help="augmentation mode")
    p.add_argument("--p", type=A.probability, default=0.2, help="augmentation probability during the benchmark")
    p.add_argument("--peak-tflops", type=A.positive, help="device peak for MFU when it is not recognised")
    p.add_argument("--threads", type=A.integer(1), help="CPU threads (default: the trainer's, the cores that "
                                                         "data loading leaves free)")
    p.add_argument("--compare", type=A.csv(A.one_of(VARIANTS.keys, "configuration")), metavar="A,B",
                   help=f"instead of the table, time two of {', '.join(VARIANTS)} alternately (each changes "
                        "the configuration the other options give) and print the median kimg/s ratio B/A with "
                        "its min-max")
    p.add_argument("--rounds", type=A.integer(1), default=5, help="alternations for --compare, each of --iters")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this machine has no CUDA device")
    if args.compare is not None and len(args.compare) != 2:
        p.error(f"--compare takes two configurations, got {len(args.compare)}")
    precisions = args.precision or (None,)
    base = BenchConfig(preset=args.preset, batch=args.batch, batch_gpu=args.batch_gpu, device=args.device,
                       precision=precisions[0], compile=args.compile, channels_last=args.channels_last,
                       threads=args.threads, aug=args.aug, p=args.p, peak_tflops=args.peak_tflops)
    if args.compare:
        return _print_comparison(args, base)
    header = False
    for precision in precisions:
        r = measure(dataclasses.replace(base, precision=precision), args.iters, args.warmup)
        trainer = r["trainer"]
        if not header:
            print(_title(args, trainer))
            print(f"{'precision':>9} {'compile':>7} {'ch_last':>7} {'ms/iter':>9} {'sec/kimg':>9} {'kimg/s':>8} "
                  f"{'TFLOP/s':>8} {'MFU':>6} {'peak mem':>10}")
            header = True
        mfu = f"{100 * r['mfu']:5.1f}%" if r["mfu"] is not None else "   n/a"
        rt = trainer.runtime
        print(f"{trainer.precision:>9} {'on' if rt.compile else 'off':>7} "
              f"{'on' if rt.channels_last else 'off':>7} {r['ms_per_iter']:9.1f} {r['sec_per_kimg']:9.3f} "
              f"{1 / r['sec_per_kimg']:8.4f} {r['tflops']:8.2f} {mfu:>6} {r['mem_gib']:7.2f}GiB"
              + ("" if r["cuda"] else " (RSS)"), flush=True)
    if not args.peak_tflops and r["mfu"] is None:
        print("# MFU: pass --peak-tflops for this device")
    return 0


def _title(args, trainer) -> str:
    model = trainer.model
    device = (torch.cuda.get_device_name(trainer.device) if trainer.device.type == "cuda"
              else f"CPU ({trainer.threads} threads)")
    return (f"# preset {args.preset} ({model.generator.resolution}x{model.generator.resolution}), batch "
            f"{trainer.train.batch} videos x {model.discriminator.num_frames} frames, {device}, "
            f"{trainer.cost.per_frame / 1e9:.1f} GFLOP per frame, augment p {args.p if args.aug != 'none' else 0}, "
            f"{args.iters} timed iterations")


def _print_comparison(args, base: BenchConfig) -> int:
    a, b = args.compare
    def title(trainer):
        print(_title(args, trainer) + " per round", flush=True)
        print(f"{f'{b} / {a} kimg/s':>32}  (median, min-max of {args.rounds} alternated rounds)", flush=True)

    ratios = compare(base, (a, b), args.iters, args.warmup, args.rounds, built=title)
    print(f"{statistics.median(ratios):32.2f}  ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)
    return 0


def _write_data(root: str, resolution: int, c_dim: int) -> None:
    """Two procedural videos; for conditional presets a dataset.json whose int labels span c_dim classes."""
    import json
    from pathlib import Path

    from training.layout import frame_name
    from training.procedural import video_name, write_dataset

    write_dataset(root, num_videos=2, num_frames=40, resolution=resolution, progress=False)
    if c_dim:
        labels = {f"{video_name(0)}/{frame_name(0)}": 0, f"{video_name(1)}/{frame_name(0)}": c_dim - 1}
        Path(root, "dataset.json").write_text(json.dumps({"labels": labels}))


if __name__ == "__main__":
    sys.exit(main())
