"""Preemption: SIGTERM / SIGUSR1 ask the run to save a snapshot and stop at the next tick.

SLURM (`--signal=USR1@120`, or SIGTERM at preemption) and `kill -- -PGID` signal
every process of the job, the data workers too: a worker that died of the
signal would crash the trainer before it saves, so workers ignore it and end
with the trainer.
"""

from __future__ import annotations

import signal

import torch

from training import distributed

STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


def _signals() -> list[signal.Signals]:
    return [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]


def ignore_stop_signals(worker_id: int | None = None) -> None:
    """DataLoader worker_init_fn: leave the stop signals to the trainer."""
    for sig in _signals():
        signal.signal(sig, signal.SIG_IGN)


class StopRequest:
    """While entered, the stop signals set `requested` instead of ending the process; the previous
    handlers come back on exit. Outside the main thread signals cannot be caught and are left alone."""

    def __init__(self):
        self.requested = False
        self._previous: dict = {}

    def _on_signal(self, signum, frame) -> None:
        self.requested = True

    def __enter__(self) -> StopRequest:
        for sig in _signals():
            try:
                self._previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread
                pass
        return self

    def __exit__(self, *exc) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def agreed(self, device: torch.device) -> bool:
        """True on every rank if any rank was signalled (a collective: call at tick boundaries only)."""
        if not distributed.active():
            return self.requested
        flag = torch.tensor([1.0 if self.requested else 0.0], device=device)
        return bool(distributed.all_reduce_sum(flag).item() > 0)
