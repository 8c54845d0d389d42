"""python -m training.metrics --metrics fvd2048_16f,fid50k_full --real DATA (--fake DATA | --checkpoint FILE)

Prints one JSON object (results, sample counts, protocol details) on stdout;
progress goes to stderr. `--output FILE` also appends it as a JSON line.
Under torchrun (`torchrun --nproc_per_node N -m training.metrics ...`) the
processes share the work and rank 0 prints; the scores equal a 1-process run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

import torch
import torch.distributed as dist

from training.metrics.assets import MissingMetricsExtra
from training.metrics.protocols import PROTOCOLS
from training.metrics.runner import EvalOptions, run_metrics


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m training.metrics", description=__doc__.split("\n\n")[1])
    parser.add_argument("--metrics", default="fvd2048_16f",
                        help=f"comma-separated, from: {', '.join(PROTOCOLS)} (default: %(default)s)")
    parser.add_argument("--real", required=True, help="real dataset (folder or zip in the training layout)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--fake", help="dataset of generated videos, same layout")
    source.add_argument("--checkpoint", help="generator checkpoint (.safetensors or original .pkl)")
    # --num-samples: torchrun's own parser takes a bare --num for an abbreviation of its --numa-binding.
    parser.add_argument("--num", "--num-samples", dest="num", type=int, default=None,
                        help="samples per side instead of the protocol's count; the metric is renamed accordingly "
                             "(spell it --num-samples under torchrun)")
    parser.add_argument("--device", default=None, help="default: cuda if available, else cpu")
    parser.add_argument("--seed", type=int, default=0, help="real clip offsets and generated latents")
    parser.add_argument("--batch-frames", type=int, default=128, help="frames per detector call")
    parser.add_argument("--gen-batch", type=int, default=8, help="videos per generator call (part of the seeding)")
    parser.add_argument("--workers", type=int, default=2, help="frame-decoding worker processes")
    parser.add_argument("--cache-dir", default=None, help="real statistics cache (default ~/.cache/stylegan_v/metrics)")
    parser.add_argument("--no-cache", action="store_true", help="recompute the real statistics")
    parser.add_argument("--output", default=None, help="append the JSON result as one line to this file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    metrics = [m.strip() for m in args.metrics.split(",") if m.strip()]
    unknown = [m for m in metrics if m not in PROTOCOLS]
    if not metrics or unknown:
        print(f"error: unknown metric(s) {unknown or args.metrics!r}; known: {', '.join(PROTOCOLS)}", file=sys.stderr)
        return 2
    for name, value in (("--num", args.num), ("--batch-frames", args.batch_frames), ("--gen-batch", args.gen_batch)):
        if value is not None and value < (2 if name == "--num" else 1):
            print(f"error: {name} is too small ({value})", file=sys.stderr)
            return 2
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    rank, world_size = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    if world_size > 1:  # launched by torchrun: env:// rendezvous
        if device.startswith("cuda"):
            device = f"cuda:{int(os.environ.get('LOCAL_RANK', '0'))}"
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.startswith("cuda") else "gloo")
    try:
        return _run(args, metrics, device, rank)
    finally:
        if world_size > 1:
            dist.destroy_process_group()


def _run(args: argparse.Namespace, metrics: list[str], device: str, rank: int) -> int:
    options = EvalOptions(device=device, seed=args.seed, num=args.num, batch_frames=args.batch_frames,
                          gen_batch=args.gen_batch, num_workers=max(0, args.workers), cache_dir=args.cache_dir,
                          use_cache=not args.no_cache, progress=not args.quiet and rank == 0)
    try:
        if args.checkpoint:
            import stylegan_v
            fake = stylegan_v.load(args.checkpoint, net="G_ema", device=device)
        else:
            fake = args.fake
        report = run_metrics(args.real, fake, metrics, options)
    except (MissingMetricsExtra, FileNotFoundError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    if rank != 0:
        return 0
    if args.checkpoint:
        report["fake"] = args.checkpoint
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        with open(args.output, "a") as handle:
            handle.write(json.dumps(report) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
