"""Training statistics without host syncs, and where they go (console, stats.jsonl, TensorBoard).

`DeviceStats.add` only launches device ops; values reach the host once per tick
in `DeviceStats.collect`, all-reduced over ranks in one call.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from training import distributed

format_interval = tqdm.format_interval  # seconds -> "mm:ss" or "h:mm:ss"


class DeviceStats:
    """Running means of scalar tensors kept on the device until `collect`."""

    def __init__(self, device: torch.device):
        self.device = device
        self._sums: dict[str, torch.Tensor] = {}
        self._counts: dict[str, int] = {}

    def add(self, name: str, value: torch.Tensor) -> None:
        value = value.detach().float().mean()
        if name in self._sums:
            self._sums[name] += value
            self._counts[name] += 1
        else:
            self._sums[name] = value.clone()
            self._counts[name] = 1

    def collect(self) -> dict[str, float]:
        """Means since the last collect, averaged over ranks (a collective call on every rank)."""
        names = sorted(self._sums)
        if not names:
            return {}
        sums = torch.stack([self._sums[n] for n in names]).to(torch.float64)
        counts = torch.tensor([float(self._counts[n]) for n in names], dtype=torch.float64, device=sums.device)
        packed = distributed.all_reduce_sum(torch.cat([sums, counts]))
        values = packed.tolist()
        self._sums.clear()
        self._counts.clear()
        n = len(names)
        return {name: values[i] / max(values[n + i], 1.0) for i, name in enumerate(names)}


def status_line(entry: dict, cuda: bool) -> str:
    """The console line of a tick entry (see Trainer._tick)."""
    mfu = entry.get("mfu")
    line = (f"tick {entry['tick']:<5d} kimg {entry['kimg']:<9.1f} time {format_interval(entry['time_s']):<9s} "
            f"sec/kimg {entry['sec_per_kimg']:<8.3g} kimg/s {entry['kimg_per_s']:<8.3g} "
            f"MFU {f'{100 * mfu:.1f}%' if mfu is not None else 'n/a':<6s} "
            f"{'gpumem' if cuda else 'cpumem'} {entry['mem_gb']:<6.2f} augment {entry['augment_p']:<6.3f} "
            f"G {entry.get('Loss/G/loss', float('nan')):.3f} D {entry.get('Loss/D/loss', float('nan')):.3f}")
    if "Loss/r1_penalty" in entry:
        line += f" r1 {entry['Loss/r1_penalty']:.4g}"
    return line


def peak_memory_gb(device: torch.device) -> float:
    """Peak GPU memory since the last call (CUDA), or the process's peak resident memory (CPU)."""
    if device.type == "cuda":
        mem = torch.cuda.max_memory_allocated(device) / 2**30
        torch.cuda.reset_peak_memory_stats(device)
        return mem
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class RunLog:
    """Rank 0's outputs: console line, stats.jsonl (appended, so resumed runs continue it), TensorBoard."""

    def __init__(self, outdir: Path, enabled: bool, tensorboard: bool = True, stream=None):
        self.enabled = enabled
        self.stream = stream or sys.stdout
        self.jsonl = None
        self.tb = None
        if not enabled:
            return
        self.jsonl = open(outdir / "stats.jsonl", "a", encoding="utf-8")
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError:  # tensorboard is optional
                self.print("TensorBoard not installed (pip install tensorboard); logging to console and stats.jsonl")
            else:
                self.tb = SummaryWriter(str(outdir))

    def print(self, text: str) -> None:
        if self.enabled:
            print(text, file=self.stream, flush=True)

    def record(self, entry: dict, step_kimg: float) -> None:
        if not self.enabled:
            return
        try:
            self.jsonl.write(json.dumps(dict(entry, timestamp=time.time())) + "\n")
            self.jsonl.flush()
        except OSError as e:  # the log is not worth stopping for; snapshots report their own failures
            self.print(f"warning: could not append to stats.jsonl: {e.strerror or e}")
        if self.tb is not None:
            for key, value in entry.items():
                if isinstance(value, (int, float)):
                    self.tb.add_scalar(key, value, global_step=int(step_kimg * 1000), walltime=time.time())
            self.tb.flush()

    def close(self) -> None:
        if self.jsonl is not None:
            self.jsonl.close()
            self.jsonl = None
        if self.tb is not None:
            self.tb.close()
            self.tb = None
