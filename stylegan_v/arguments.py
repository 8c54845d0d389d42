"""What every command-line tool of the project shares: its parser's error style and its argument types.

A usage mistake ends like every other refusal of the tools: one line starting
'error:', exit status 2, before any work. The types here check a value when it is
parsed, so a bad one never reaches a model. Nothing here imports torch at import
time: `--help` must stay instant, and the types that need torch import it only
when a value is parsed.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable
from pathlib import Path

# What the commands use when no --checkpoint is given: the model shipped in the package.
DEMO_CHECKPOINT = Path(__file__).resolve().parent / "assets" / "stylegan_v_demo.safetensors"


class Parser(argparse.ArgumentParser):
    """argparse with one-line errors (exit status 2) and the defaults shown in --help."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("formatter_class", HelpFormatter)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """The module docstring as written, and '(default: X)' after every option that has a default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "%(default)" in text or "default" in text.lower():
            return text  # the help says it in its own words (e.g. 'default: the preset's')
        if any(action.default is v for v in (None, False, argparse.SUPPRESS)) or not action.option_strings:
            return text
        return f"{text} (default: %(default)s)" if text else "(default: %(default)s)"


def finite(text: str) -> float:
    """A float; NaN and infinity are refused (they would render NaN frames or overflow)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid float value: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def integer(low: int | None = None, high: int | None = None) -> Callable[[str], int]:
    """An int in [low, high] (either end open when None)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"invalid integer value: {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {_range(low, high)}, got {value}")
        return value

    parse.__name__ = "integer"  # argparse names the type in some messages
    return parse


def positive(text: str) -> float:
    """A finite float above 0."""
    value = finite(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return value


def probability(text: str) -> float:
    """A float in [0, 1]."""
    value = finite(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1], got {text}")
    return value


def nonnegative(text: str) -> float:
    """A finite float >= 0."""
    value = finite(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def precision(text: str) -> str:
    """The library's name of a precision (float32, float16, bfloat16); fp32, fp16, bf16 and half are read too."""
    from .generator import PRECISIONS, parse_precision

    try:
        dtype = parse_precision(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return next(name for name, value in PRECISIONS.items() if value == dtype)


def csv(item: Callable[[str], object]) -> Callable[[str], tuple]:
    """A comma-separated list of `item`s, at least one; each is checked by `item` and named when refused."""

    def parse(text: str) -> tuple:
        parts = [p.strip() for p in text.split(",")]
        if not text.strip() or any(not p for p in parts):
            raise argparse.ArgumentTypeError(f"expected a comma-separated list, got {text!r}")
        values = []
        for p in parts:
            try:
                values.append(item(p))
            except (argparse.ArgumentTypeError, ValueError) as e:
                raise argparse.ArgumentTypeError(f"{p!r}: {e}") from None
        return tuple(values)

    parse.__name__ = "list"
    return parse


def one_of(choices: Callable[[], object], what: str) -> Callable[[str], str]:
    """A name among `choices()` (called when a value is parsed, so the catalogue is imported only then)."""

    def parse(text: str) -> str:
        known = sorted(choices())
        if text not in known:
            raise argparse.ArgumentTypeError(f"unknown {what} {text!r}; choose from {', '.join(known)}")
        return text

    parse.__name__ = what
    return parse


def device(name: str):
    """The torch.device for a name ('auto': CUDA when present), or a ValueError when it is not a device
    name or is not present on this machine."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError as e:
        raise ValueError(f"--device {name!r} is not a device name ({e})") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0 or (dev.index or 0) >= count:
            raise ValueError(f"--device {name}: this machine has {count} CUDA device(s)")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"--device {name}: MPS is not available here")
    return dev


def _range(low: int | None, high: int | None) -> str:
    if low is not None and high is not None:
        return f"{low}..{high}"
    return f">= {low}" if low is not None else f"<= {high}"
