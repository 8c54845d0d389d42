"""Quality measures of a projection and the baselines it has to beat."""

from __future__ import annotations

import torch

from .. import render as R
from ..generator import Generator
from ..motions import Motion
from .perceptual import InceptionDistance, inception_resolution


def psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """PSNR in dB of raw frames (range [-1, 1], i.e. peak-to-peak 2) over the last three axes."""
    mse = (a.float().clamp(-1, 1) - b.float().clamp(-1, 1)).square().flatten(-3).mean(-1)
    return 10 * torch.log10(4 / mse.clamp_min(1e-12))


def frame_change(frames: torch.Tensor) -> float:
    """Mean absolute change between neighbouring frames [F, C, H, W] (raw units)."""
    return float((frames[1:].float() - frames[:-1].float()).abs().mean())


@torch.no_grad()
def inception_distance(a: torch.Tensor, b: torch.Tensor, resolution: int = 0) -> torch.Tensor:
    """The Inception perceptual distance [N] between raw frames a and b (needs the metrics extra)."""
    distance = InceptionDistance(inception_resolution(a.shape[-1], resolution), a.device)
    return distance(a, distance.target_features(b))


@torch.no_grad()
def baselines(G: Generator, targets: torch.Tensor, t: float, motion: Motion, samples: int = 64, seed: int = 0,
              c: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
    """Frames [B, 3, H, W] of the two trivial answers: w_avg, and the best (by PSNR) of `samples` random w."""
    from .fit import w_statistics  # fit measures its progress with psnr from here

    device = next(G.parameters()).device
    targets = targets.to(device)
    time = torch.tensor([float(t)], dtype=torch.float64)
    centre, _ = w_statistics(G, c)
    average = R.render(G, centre.reshape(1, 1, -1).expand(1, G.num_ws, -1), motion, time, c=c)[:, 0]
    ws = R.sample_content(G, seed, samples, class_index=None, device=device)
    if G.c_dim and c is not None:
        ws = G.mapping(R.content_latents(seed, samples, G.z_dim).to(device), c.to(device).expand(samples, -1))
    rendered = R.render(G, ws, motion, time, c=c)[:, 0].to(device)  # [samples, 3, H, W]
    scores = psnr(rendered.unsqueeze(0), targets.unsqueeze(1))  # [B, samples]
    best = rendered[scores.argmax(dim=1)]
    return {"w_avg": average.expand(targets.shape[0], -1, -1, -1).cpu(), f"best_of_{samples}": best.cpu()}
