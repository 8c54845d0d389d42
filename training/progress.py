"""A dependency-free progress bar for the command-line tools.

On a terminal it redraws one line; in logs (not a TTY) it prints a plain line
every 10% so CI output stays short.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from typing import TextIO, TypeVar

T = TypeVar("T")


def _format_seconds(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    def __init__(
        self,
        total: int | None,
        desc: str = "",
        unit: str = "it",
        stream: TextIO | None = None,
        enabled: bool = True,
        min_interval: float = 0.2,
        width: int = 30,
    ):
        self.total = total
        self.desc = desc
        self.unit = unit
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = enabled
        self.min_interval = min_interval
        self.width = width
        self.count = 0
        self.postfix = ""
        self._start = time.monotonic()
        self._last_draw = 0.0
        self._last_decile = -1
        self._tty = bool(getattr(self.stream, "isatty", lambda: False)())
        self._closed = False

    def update(self, n: int = 1) -> None:
        self.count += n
        self._maybe_draw()

    def set_postfix(self, text: str) -> None:
        self.postfix = text
        self._maybe_draw()

    def line(self) -> str:
        elapsed = time.monotonic() - self._start
        rate = self.count / elapsed if elapsed > 0 else 0.0
        head = f"{self.desc}: " if self.desc else ""
        if self.total:
            frac = min(self.count / self.total, 1.0)
            filled = int(round(frac * self.width))
            bar = "#" * filled + "-" * (self.width - filled)
            eta = (self.total - self.count) / rate if rate > 0 else 0.0
            text = f"{head}{frac * 100:3.0f}% [{bar}] {self.count}/{self.total} {self.unit}"
            text += f" [{_format_seconds(elapsed)}<{_format_seconds(eta)}, {rate:.2f} {self.unit}/s]"
        else:
            text = f"{head}{self.count} {self.unit} [{_format_seconds(elapsed)}, {rate:.2f} {self.unit}/s]"
        return f"{text} {self.postfix}".rstrip()

    def _maybe_draw(self, final: bool = False) -> None:
        if not self.enabled or self._closed:
            return
        now = time.monotonic()
        if self._tty:
            if final or now - self._last_draw >= self.min_interval:
                self._last_draw = now
                self.stream.write("\r\033[K" + self.line() + ("\n" if final else ""))
                self.stream.flush()
            return
        decile = int(10 * self.count / self.total) if self.total else -1
        already_shown = final and self.total is not None and self._last_decile >= 10
        if (final and not already_shown) or (self.total and decile > self._last_decile):
            self._last_decile = decile
            self.stream.write(self.line() + "\n")
            self.stream.flush()

    def close(self) -> None:
        if not self._closed:
            self._maybe_draw(final=True)
            self._closed = True

    def __enter__(self) -> "ProgressBar":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def track(
    iterable: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it", enabled: bool = True
) -> Iterator[T]:
    """Yields from `iterable`, advancing a ProgressBar per item."""
    if total is None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    with ProgressBar(total, desc=desc, unit=unit, enabled=enabled) as bar:
        for item in iterable:
            yield item
            bar.update()
