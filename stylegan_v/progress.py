"""A minimal progress bar for long library work (no dependency; quiet when not a terminal)."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, desc: str = "", stream=None, min_interval: float = 0.2):
        self.total, self.desc, self.count = max(int(total), 1), desc, 0
        self.stream = stream or sys.stderr
        self.start = self.last = time.monotonic()
        self.min_interval = min_interval
        self.tty = getattr(self.stream, "isatty", lambda: False)()

    def update(self, n: int = 1) -> None:
        self.count += n
        now = time.monotonic()
        if now - self.last >= self.min_interval or self.count >= self.total:
            self.last = now
            self._draw(now)

    def _draw(self, now: float) -> None:
        frac = min(self.count / self.total, 1.0)
        rate = self.count / max(now - self.start, 1e-9)
        eta = (self.total - self.count) / rate if rate > 0 else float("inf")
        bar = "#" * int(frac * 30)
        line = f"{self.desc} [{bar:<30}] {self.count}/{self.total} {rate:.1f}/s eta {eta:.0f}s"
        if self.tty:
            self.stream.write("\r" + line)
        elif self.count >= self.total or now - self.start < self.min_interval * 2:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
