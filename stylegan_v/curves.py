"""Keyframed curves: `"0:1.0, 2:0.25, 4:1.0"` -> a function of time, and its exact integral.

Between keys the value moves linearly or with smoothstep easing (zero slope at
every key); before the first key and after the last it holds. Integrals are
closed-form, so speed curves turn into timestamps without numerical drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import torch

INTERPOLATIONS = ("linear", "smooth")
_KEY = re.compile(r"^\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*:\s*([-+]?\d*\.?\d+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Curve:
    times: tuple[float, ...]
    values: tuple[float, ...]
    interpolation: str = "linear"

    def __post_init__(self) -> None:
        if not self.times or len(self.times) != len(self.values):
            raise ValueError("a curve needs at least one key, with as many times as values")
        if any(b <= a for a, b in zip(self.times, self.times[1:])):
            raise ValueError(f"key times must increase strictly, got {list(self.times)}")
        if self.interpolation not in INTERPOLATIONS:
            raise ValueError(f"interpolation must be one of {INTERPOLATIONS}, got {self.interpolation!r}")

    @classmethod
    def parse(cls, text: str, interpolation: str = "linear") -> Curve:
        """Parse `time:value` pairs separated by commas, e.g. `"0:1.0, 2:0.25, 4:1.0"`."""
        keys = []
        for part in filter(None, (p.strip() for p in text.replace(";", ",").split(","))):
            match = _KEY.match(part)
            if not match:
                raise ValueError(f"cannot read keyframe {part!r}; write keys as time:value, e.g. '0:1.0, 2:0.25'")
            keys.append((float(match.group(1)), float(match.group(2))))
        if not keys:
            raise ValueError("the keyframe list is empty; write keys as time:value, e.g. '0:1.0, 2:0.25'")
        keys.sort()
        return cls(tuple(k for k, _ in keys), tuple(v for _, v in keys), interpolation)

    @classmethod
    def constant(cls, value: float) -> Curve:
        return cls((0.0,), (float(value),))

    def _segments(self, x: torch.Tensor):
        times = torch.tensor(self.times, dtype=torch.float64)
        values = torch.tensor(self.values, dtype=torch.float64)
        i = (torch.searchsorted(times, x, right=True) - 1).clamp(0, max(len(self.times) - 2, 0))
        if len(self.times) == 1:
            return times, values, i, None
        t0, t1 = times[i], times[i + 1]
        u = ((x - t0) / (t1 - t0)).clamp(0, 1)
        return times, values, i, u

    def __call__(self, x: torch.Tensor | float) -> torch.Tensor:
        x = torch.as_tensor(x, dtype=torch.float64)
        times, values, i, u = self._segments(x)
        if u is None:
            return values[0].expand_as(x).clone()
        h = u if self.interpolation == "linear" else u * u * (3 - 2 * u)
        return values[i] + (values[i + 1] - values[i]) * h

    def integral(self, x: torch.Tensor | float) -> torch.Tensor:
        """∫_{times[0]}^{x} curve(s) ds (negative before the first key), exact for both interpolations."""
        x = torch.as_tensor(x, dtype=torch.float64)
        times = torch.tensor(self.times, dtype=torch.float64)
        values = torch.tensor(self.values, dtype=torch.float64)
        first, last = times[0], times[-1]
        before = (x.clamp(max=first) - first) * values[0]
        after = (x.clamp(min=last) - last) * values[-1]
        if len(self.times) == 1:
            return before + after
        widths = times[1:] - times[:-1]
        # Full-segment areas (both easings have mean (v0 + v1) / 2 over a segment).
        areas = widths * (values[:-1] + values[1:]) / 2
        cumulative = torch.cat([torch.zeros(1, dtype=torch.float64), areas.cumsum(0)])
        inside = x.clamp(first, last)
        _, _, i, u = self._segments(inside)
        v0, v1, w = values[i], values[i + 1], widths[i]
        # ∫_0^u h(s) ds: u²/2 (linear) or u³ - u⁴/2 (smoothstep).
        hint = u * u / 2 if self.interpolation == "linear" else u**3 - u**4 / 2
        partial = w * (v0 * u + (v1 - v0) * hint)
        return before + cumulative[i] + partial + after
