"""Train StyleGAN-V.

    python -m training.train --data DATA --outdir RUN --preset NAME [--kimg K] [--snap KIMG]
                             [--resume latest|FILE] [--init SNAPSHOT]

Several GPUs / machines: launch the same command with torchrun, e.g.
    torchrun --standalone --nproc_per_node 8 -m training.train --data ... --outdir ... --preset ffs256

kimg counts frames (3 per clip), like the original. The run folder receives
training-state-KKKKKK.safetensors (resume), network-snapshot-KKKKKK.safetensors
(G_ema for the nodes and stylegan_v.load), samples-KKKKKK.mp4, stats.jsonl.
Exit status: 0 done, 1 bad input, 3 stopped (e.g. a snapshot could not be written).
"""

from __future__ import annotations

import argparse
import sys

from training.presets import TRAIN_PRESETS, train_preset


def _bool_flag(parser: argparse.ArgumentParser, name: str, help: str) -> None:
    parser.add_argument(f"--{name}", dest=name.replace("-", "_"), action=argparse.BooleanOptionalAction,
                        default=None, help=help)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m training.train", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="dataset folder or zip (root/video/frame.png; see training.prepare)")
    p.add_argument("--outdir", required=True, help="run folder (created; reused by --resume latest)")
    p.add_argument("--preset", choices=sorted(TRAIN_PRESETS), help="training + model preset (not needed with --resume)")
    p.add_argument("--kimg", type=float, help="train until this many thousand frames (default: preset)")
    p.add_argument("--snap", type=float, help="training snapshot + G_ema export every this many kimg (default: preset)")
    p.add_argument("--tick", type=float, help="status line every this many kimg (default: preset)")
    p.add_argument("--resume", help="'latest' (newest snapshot in --outdir), 'auto' (latest if there is one, else "
                                    "start; for job requeueing) or a training-state file")
    p.add_argument("--init", help="start from these weights (an original .pkl or one of our .safetensors); "
                                  "fine-tuning settings: fast ADA, no EMA ramp-up")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch", type=int, help="videos per iteration over all processes (default: preset)")
    p.add_argument("--batch-gpu", type=int, help="videos per forward pass per process (gradient accumulation)")
    p.add_argument("--gamma", type=float, help="R1 weight (default: 0.0002 * resolution^2 / batch)")
    p.add_argument("--aug", choices=("ada", "fixed", "none"), help="augmentation mode (default: ada)")
    p.add_argument("--p", type=float, help="augmentation probability for --aug fixed (initial p for ada)")
    p.add_argument("--target", type=float, help="ADA target for E[sign(D(real))] (default 0.6)")
    _bool_flag(p, "mirror", "add x-flipped copies of the videos (default: preset, on)")
    p.add_argument("--sampling", choices=("random", "uniform", "consecutive"), help="frame sampling (default random)")
    p.add_argument("--max-dist", type=int, help="largest first-to-last frame span of a clip (default 32)")
    p.add_argument("--dataset-fps", type=float, help="frame rate of the data, stored in exports (default: preset)")
    p.add_argument("--device", choices=("cuda", "cpu"), help="default: cuda when available")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"),
                   help="bf16: autocast (default on CUDA); fp16: the original's fp16 top blocks; fp32 (default on CPU)")
    p.add_argument("--loss-scaling", action="store_true", help="dynamic loss scaling (with --precision fp16)")
    _bool_flag(p, "compile", "torch.compile the main G and D passes (default: on for CUDA; R1 stays eager)")
    _bool_flag(p, "channels-last", "NHWC activations (default: on for CUDA)")
    p.add_argument("--threads", type=int, help="CPU threads for torch (on a shared CPU, 1 is often fastest)")
    p.add_argument("--workers", type=int, default=3, help="data-loading processes per GPU (0: load in the main one)")
    p.add_argument("--keep", type=int, default=3, help="training snapshots to keep (exports are all kept; 0 = all)")
    p.add_argument("--sample-kimg", type=float, help="sample video every this many kimg (default: --snap; 0: never)")
    p.add_argument("--sample-videos", type=int, help="videos in the sample grid (default: 16, 4 at 1024x1024)")
    p.add_argument("--sample-frames", type=int, default=64)
    p.add_argument("--metrics", default="",
                   help="comma-separated metrics, e.g. fvd2048_16f,fid50k_full (default: none)")
    p.add_argument("--metrics-kimg", type=float, help="evaluate every this many kimg (default: --snap)")
    p.add_argument("--metrics-num", type=int, help="fewer samples for a quick look (metric renamed, e.g. fvd256_16f)")
    p.add_argument("--peak-tflops", type=float, help="device peak for the MFU estimate when not auto-detected")
    p.add_argument("--no-tensorboard", action="store_true")
    p.add_argument("--verify-replicas", action="store_true",
                   help="check that all processes hold identical weights at the end")
    return p


def options_from_args(args: argparse.Namespace):
    from training.loop import RunOptions

    train = None
    if args.preset:
        train = train_preset(args.preset).with_overrides(
            batch=args.batch, r1_gamma=args.gamma, augment=args.aug, augment_p=args.p, ada_target=args.target,
            mirror=args.mirror, sampling=args.sampling, max_dist=args.max_dist)
    elif not args.resume or args.resume == "auto":
        raise ValueError("--preset is required unless you --resume a run (with --resume auto too, for the first start)")
    return RunOptions(
        data=args.data, outdir=args.outdir, train=train, seed=args.seed, kimg=args.kimg, snap=args.snap,
        tick=args.tick, dataset_fps=args.dataset_fps, resume=args.resume, init=args.init, device=args.device,
        precision=args.precision, loss_scaling=args.loss_scaling, compile=args.compile,
        channels_last=args.channels_last, batch_gpu=args.batch_gpu, workers=args.workers, keep=args.keep,
        sample_kimg=args.sample_kimg, sample_videos=args.sample_videos, sample_frames=args.sample_frames,
        metrics=tuple(m for m in args.metrics.split(",") if m), metrics_kimg=args.metrics_kimg,
        metrics_num=args.metrics_num,
        peak_tflops=args.peak_tflops, tensorboard=not args.no_tensorboard, verify_replicas=args.verify_replicas)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from training import distributed
    from training.loop import Trainer, TrainingStopped
    from training.snapshot import SnapshotError

    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    try:
        opts = options_from_args(args)
        info = distributed.init(opts.device)
        try:
            Trainer(opts, info).run()
        finally:
            distributed.shutdown()
    except TrainingStopped as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 3
    except (ValueError, FileNotFoundError, SnapshotError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
