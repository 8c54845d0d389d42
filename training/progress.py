"""Progress bars for the command-line tools (prepare, procedural, metrics): tqdm with their defaults.

On a terminal the bar redraws in place; in logs (not a TTY) it is drawn about
every 10% so CI output stays short.
"""

from __future__ import annotations

import math
import sys
from typing import TextIO

from tqdm import tqdm

_FORMAT = "{l_bar}{bar}| {n_fmt}/{total_fmt} {unit} [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


class ProgressBar(tqdm):
    """tqdm on stderr (or `stream`), shown only if `enabled`; `update(n)` and use as a context manager."""

    def __init__(self, total: int | None, desc: str = "", unit: str = "it", stream: TextIO | None = None,
                 enabled: bool = True):
        stream = stream if stream is not None else sys.stderr
        tty = bool(getattr(stream, "isatty", lambda: False)())
        if tty:
            pacing = {"mininterval": 0.2}
        else:  # a line every tenth of the total (every 10 s without one)
            tenth = max(1, math.ceil(total / 10)) if total else 1
            pacing = {"mininterval": 0 if total else 10.0, "miniters": tenth, "delay": 1e-9}
        super().__init__(total=total, desc=desc, unit=unit, file=stream, disable=not enabled, dynamic_ncols=tty,
                         bar_format=_FORMAT if total else None, **pacing)
