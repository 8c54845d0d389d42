"""Train StyleGAN-V.

    python -m training.train --data DATA --outdir RUN --preset NAME [--kimg K] [--snap KIMG]
                             [--resume latest|FILE] [--init SNAPSHOT]

Several GPUs / machines: launch the same command with torchrun, e.g.
    torchrun --standalone --nproc_per_node 8 -m training.train --data ... --outdir ... --preset ffs256

kimg counts frames (3 per clip), like the original. The run folder receives
training-state-KKKKKK.safetensors (resume), network-snapshot-KKKKKK.safetensors
(G_ema for the nodes and stylegan_v.load), samples-KKKKKK.mp4, stats.jsonl.
With --resume, options that change the networks or the data layout (--preset,
--seed, --init, --sampling, --max-dist) must match the run; --batch, --gamma,
--aug, --p, --target, --mirror, --data, --dataset-fps, --kimg, --snap, --tick
may change, and each change is logged.
Exit status: 0 done, 1 bad input, 3 stopped (e.g. a snapshot could not be written).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from stylegan_v.arguments import Parser
from training.options import OPTIONS, RunOptions, flag_of


def build_parser() -> argparse.ArgumentParser:
    """One flag per RunOptions field that has one (see training.options); usage errors are one line."""
    p = Parser(prog="python -m training.train", description=__doc__)
    for f in OPTIONS:
        flag = flag_of(f)
        if not flag:
            continue
        kwargs = dict(f.metadata["argparse"])
        if kwargs.get("action") == "boolean":
            kwargs["action"] = argparse.BooleanOptionalAction
        help_text = f.metadata["help"] or ""
        if "default" not in help_text and f.default not in (None, dataclasses.MISSING, False, True, ()):
            help_text = f"{help_text} (default: {f.default})".strip()  # the parser's own default is SUPPRESS
        if help_text:
            kwargs["help"] = help_text
        # Absent flags stay absent, so RunOptions' defaults apply (and None reaches the resolver).
        p.add_argument(flag, dest=f.name, default=argparse.SUPPRESS, **kwargs)
    return p


def options_from_args(args: argparse.Namespace) -> RunOptions:
    given = vars(args)
    if "train" not in given and given.get("resume") in (None, "auto"):
        raise ValueError("--preset is required unless you --resume a run (with --resume auto too, for the first start)")
    values = {}
    for f in OPTIONS:
        if f.name in given:
            parse = f.metadata["parse"]
            values[f.name] = parse(given[f.name]) if parse else given[f.name]
    return RunOptions(**values)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from stylegan_v.fileio import AtomicWriteError
    from training import distributed
    from training.loop import Trainer, TrainingStopped

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
    except (ValueError, FileNotFoundError, AtomicWriteError) as e:
        print(f"error: {e}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
