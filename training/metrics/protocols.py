"""The metric protocols of the original StyleGAN-V, and honest names for smaller runs."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

FVD, FID = "fvd", "fid"


@dataclass(frozen=True)
class Protocol:
    """What one metric compares.

    FVD: `num_fake` generated clips of `num_frames` frames taken every `subsample`
    dataset frames from t=0, against one clip per real video (the first
    `num_real` videos long enough, sorted by name) at a seeded random offset.
    FID: `num_fake` generated frames, taken as `num_frames`-frame videos from t=0,
    against every frame of the dataset (`num_real` None).
    """

    kind: str
    num_fake: int
    num_real: int | None
    num_frames: int
    subsample: int = 1

    def __post_init__(self):
        if self.kind not in (FVD, FID):
            raise ValueError(f"protocol kind must be {FVD!r} or {FID!r}, got {self.kind!r}")
        if self.num_fake < 2 or (self.num_real is not None and self.num_real < 2):
            raise ValueError("a Frechet distance needs at least 2 samples on each side")
        if self.num_frames < 1 or self.subsample < 1:
            raise ValueError(f"num_frames and subsample must be >= 1, got {self.num_frames}, {self.subsample}")

    @property
    def name(self) -> str:
        if self.kind == FID:
            return f"fid{_count(self.num_fake)}_full"
        # A subsampled clip is named by the span it covers: 16 frames every 8 -> "128f_subsample8f".
        name = f"fvd{_count(self.num_fake)}_{self.clip_span}f"
        return name if self.subsample == 1 else f"{name}_subsample{self.subsample}f"

    @property
    def clip_span(self) -> int:
        """Dataset frames a clip covers; shorter real videos are skipped (as in the original)."""
        return self.num_frames * self.subsample

    def with_num(self, num: int | None) -> "Protocol":
        """The same protocol with `num` samples instead of the standard count (its name says so)."""
        if num is None:
            return self
        if num < 2:
            raise ValueError(f"--num must be >= 2, got {num}")
        if self.kind == FID:
            return dataclasses.replace(self, num_fake=num)
        return dataclasses.replace(self, num_fake=num, num_real=num)


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


PROTOCOLS: dict[str, Protocol] = {
    "fvd2048_16f": Protocol(FVD, num_fake=2048, num_real=2048, num_frames=16),
    "fvd2048_128f": Protocol(FVD, num_fake=2048, num_real=2048, num_frames=128),
    "fvd2048_128f_subsample8f": Protocol(FVD, num_fake=2048, num_real=2048, num_frames=16, subsample=8),
    "fid50k_full": Protocol(FID, num_fake=50000, num_real=None, num_frames=16),
}


def get_protocol(name: str, num: int | None = None) -> Protocol:
    if name not in PROTOCOLS:
        raise ValueError(f"unknown metric {name!r}; known: {', '.join(PROTOCOLS)}")
    return PROTOCOLS[name].with_num(num)
