"""Training speed of a preset: sec/kimg, kimg/s, MFU, peak memory (compute only, synthetic real clips).

    python -m training.benchmark --preset ffs256 [--batch 16] [--iters 20] [--warmup 5]
                                 [--device cuda] [--precision fp32,bf16] [--compile | --no-compile]

Runs the real training step (Gmain, Dmain, lazy R1 every 16 iterations, EMA,
ADA) on random clips, so data loading is excluded. kimg counts frames, as in
training. MFU uses the layer-shape FLOP model in training.flops against the
device's dense bf16 peak (or --peak-tflops).
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time

import torch

from stylegan_v import arguments as A
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


def measure(args, precision: str | None) -> dict:
    """One configuration: build a trainer, warm up, time `args.iters` steps."""
    from training import distributed
    from training.loop import RunOptions, Trainer

    train = train_preset(args.preset).with_overrides(batch=args.batch, augment=args.aug, augment_p=args.p)
    model = train.model_config()
    with tempfile.TemporaryDirectory(prefix="sgv-bench-") as tmp:
        # A two-video dataset only so that the trainer can be built (labels, fake-time lengths).
        _write_data(f"{tmp}/data", model.generator.resolution, model.generator.c_dim)
        opts = RunOptions(data=f"{tmp}/data", outdir=f"{tmp}/run", train=train, device=args.device,
                          precision=precision, compile=args.compile, channels_last=args.channels_last,
                          batch_gpu=args.batch_gpu, workers=0, sample_kimg=0, tensorboard=False)
        trainer = Trainer(opts, distributed.init(args.device))
        trainer.log.close()
        cuda = trainer.device.type == "cuda"
        clips = _synthetic_clips(trainer, seed=0)

        def sync():
            if cuda:
                torch.cuda.synchronize(trainer.device)

        for _ in range(args.warmup):
            trainer.train_step(clips)
        sync()
        if cuda:
            torch.cuda.reset_peak_memory_stats(trainer.device)
        start = time.perf_counter()
        for _ in range(args.iters):
            trainer.train_step(clips)
        sync()
        seconds = time.perf_counter() - start

    frames = args.iters * trainer.train.batch * model.discriminator.num_frames
    flops = trainer.cost.per_iteration * args.iters / seconds
    peak = args.peak_tflops * 1e12 if args.peak_tflops else trainer.peak
    return {
        "trainer": trainer, "model": model, "cuda": cuda,
        "ms_per_iter": seconds / args.iters * 1000, "sec_per_kimg": seconds / (frames / 1000),
        "tflops": flops / 1e12, "mfu": flops / peak if peak else None,
        "mem_gib": (torch.cuda.max_memory_allocated(trainer.device) / 2**30 if cuda
                    else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20),
    }


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
    p.add_argument("--threads", type=A.integer(1), help="CPU threads (torch.set_num_threads; default: torch's)")
    return p


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: this machine has no CUDA device")
    precisions = args.precision or (None,)
    if args.threads:
        torch.set_num_threads(args.threads)

    header = False
    for precision in precisions:
        r = measure(args, precision)
        trainer, model = r["trainer"], r["model"]
        if not header:
            device = (torch.cuda.get_device_name(trainer.device) if r["cuda"]
                      else f"CPU ({torch.get_num_threads()} threads)")
            print(f"# preset {args.preset} ({model.generator.resolution}x{model.generator.resolution}), batch "
                  f"{trainer.train.batch} videos x {model.discriminator.num_frames} frames, {device}, "
                  f"{trainer.cost.per_frame / 1e9:.1f} GFLOP per frame, augment p "
                  f"{args.p if args.aug != 'none' else 0}, {args.iters} timed iterations")
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
