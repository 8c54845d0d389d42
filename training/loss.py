"""StyleGAN-V losses: the non-saturating logistic loss and lazy R1, per video.

Pure functions of (networks, inputs); the loop owns optimisers, phases and
gradient scaling. Logits are per video; frames are flattened video-major
[B*F, C, H, W]. `augment(frames, num_frames)` draws one transform per video and
applies it to all of the video's frames (the original's video-consistent ADA).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

Augment = Callable[[torch.Tensor, int], torch.Tensor]


def run_D(D, frames: torch.Tensor, c: torch.Tensor, t: torch.Tensor, augment: Augment | None = None) -> torch.Tensor:
    """Logits [B] (float32) of clips [B*F, C, H, W] with frame times t [B, F]."""
    if augment is not None:
        frames = augment(frames, t.shape[1])
    logits = D(frames, c, t)
    return logits.to(torch.promote_types(logits.dtype, torch.float32))


def generator_loss(G, D, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor,
                   augment: Augment | None = None, max_t: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Gmain: mean_b softplus(-D(G(z, c, t))). Returns (loss, fake logits).

    `max_t`: a host-side bound of t, so that G never reads t back from the device.
    """
    frames = G(z, c, t, max_t=max_t)
    logits = run_D(D, frames, c, t, augment)
    return F.softplus(-logits).mean(), logits


def discriminator_fake_loss(G, D, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor,
                            augment: Augment | None = None, max_t: float | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
    """Dmain, generated half: mean_b softplus(D(G(z))), G not differentiated."""
    with torch.no_grad():
        frames = G(z, c, t, max_t=max_t)
    logits = run_D(D, frames.detach(), c, t, augment)
    return F.softplus(logits).mean(), logits


def discriminator_real_loss(D, real: torch.Tensor, c: torch.Tensor, t: torch.Tensor,
                            augment: Augment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Dmain, real half: mean_b softplus(-D(real))."""
    logits = run_D(D, real.detach(), c, t, augment)
    return F.softplus(-logits).mean(), logits


def r1_penalty(D, real: torch.Tensor, c: torch.Tensor, t: torch.Tensor,
               augment: Augment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-video R1 penalty (1/F) sum_f ||dD_b/dx_{b,f}||^2, differentiable w.r.t. D's parameters.

    The gradient is taken w.r.t. the frames *before* augmentation (the pipe is
    differentiable), as in the original. Returns (penalty [B] float32, logits [B]).

    Must run through an eager D: torch.compile does not support the double
    backward this needs.
    """
    num_frames = t.shape[1]
    x = real.detach().requires_grad_(True)
    logits = run_D(D, x, c, t, augment)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    # Reduce in at least float32 (the squared gradient is small; bf16 would lose it).
    grad = grad.to(torch.promote_types(grad.dtype, torch.float32))
    per_frame = grad.square().sum(dim=[1, 2, 3])  # [B*F]
    return per_frame.reshape(-1, num_frames).mean(dim=1), logits


def r1_loss(D, real: torch.Tensor, c: torch.Tensor, t: torch.Tensor, gamma: float, interval: int,
            augment: Augment | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Dreg: gamma/2 * mean_b penalty, times the lazy interval (it runs once per `interval` iterations).

    The original adds `logits * 0` so DDP sees every parameter used; we reduce
    gradients ourselves, so that term (a wasted backward) is dropped.
    """
    penalty, logits = r1_penalty(D, real, c, t, augment)
    return penalty.mean() * (gamma / 2) * interval, logits
