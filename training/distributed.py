"""Data parallelism through torch.distributed, launched by torchrun (or SLURM + torchrun).

Every rank holds a full replica; after each backward the gradients are summed
across ranks in one flat all-reduce and divided by the world size (the
original's scheme, no DDP wrapper: the GAN phases toggle requires_grad and run
several forwards per step, which DDP handles poorly). Only rank 0 writes files.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def init(device: str | None = None, timeout_minutes: float = 30.0) -> DistInfo:
    """Join the process group if launched by torchrun (WORLD_SIZE > 1), pick the device.

    `device`: "cuda", "cpu" or None (cuda when available). NCCL on CUDA, gloo on CPU.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if kind.startswith("cuda"):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda was requested but no CUDA device is available")
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if world_size > 1 and not dist.is_initialized():
        backend = "nccl" if dev.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=rank, world_size=world_size,
                                timeout=datetime.timedelta(minutes=timeout_minutes),
                                device_id=dev if dev.type == "cuda" else None)
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def active() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def shutdown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


@torch.no_grad()
def broadcast_module(module: torch.nn.Module, src: int = 0) -> None:
    """Make every rank's parameters and buffers equal to rank `src`'s."""
    if not active():
        return
    for tensor in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(tensor.data, src=src)


@torch.no_grad()
def reduce_gradients(params: list[torch.nn.Parameter], finite: bool = True) -> None:
    """Average gradients over ranks, then replace NaN/inf (the original's nan_to_num).

    `finite=False` keeps NaN/inf, for a loss scaler that must see overflows.
    """
    params = [p for p in params if p.grad is not None]
    if not params:
        return
    flat = torch.cat([p.grad.reshape(-1) for p in params])
    if active():
        dist.all_reduce(flat)
        flat /= dist.get_world_size()
    if finite:
        torch.nan_to_num(flat, nan=0.0, posinf=1e5, neginf=-1e5, out=flat)
    for p, g in zip(params, flat.split([p.numel() for p in params])):
        p.grad.copy_(g.view_as(p.grad))


@torch.no_grad()
def average_tensors(tensors: list[torch.Tensor]) -> None:
    """In-place mean over ranks (one flat all-reduce)."""
    if not active() or not tensors:
        return
    flat = torch.cat([t.reshape(-1).float() for t in tensors])
    dist.all_reduce(flat)
    flat /= dist.get_world_size()
    for t, v in zip(tensors, flat.split([t.numel() for t in tensors])):
        t.copy_(v.view_as(t))


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    if active():
        dist.all_reduce(tensor)
    return tensor


def gather_objects(obj) -> list:
    """Every rank's `obj` on every rank (small host objects, e.g. RNG states)."""
    if not active():
        return [obj]
    out = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if active():
        dist.barrier()


def broadcast_object(obj, src: int = 0):
    if not active():
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


@torch.no_grad()
def module_checksum(module: torch.nn.Module) -> torch.Tensor:
    """float64 [2]: sum and sum of squares weighted by position, sensitive to any differing element."""
    total = torch.zeros(2, dtype=torch.float64)
    for i, tensor in enumerate(list(module.parameters()) + list(module.buffers())):
        x = tensor.detach().to("cpu", torch.float64).reshape(-1)
        w = torch.arange(1, x.numel() + 1, dtype=torch.float64) / x.numel() + i
        total += torch.stack([(x * w).sum(), (x.square() * w).sum()])
    return total


def verify_replicas(nets: dict[str, torch.nn.Module], is_main: bool) -> dict[str, list[list[float]]]:
    """Checksums of `nets` on every rank (a collective); raises if any rank differs."""
    sums = {name: module_checksum(net).tolist() for name, net in nets.items()}
    everyone = gather_objects(sums)
    for name in sums:
        values = [s[name] for s in everyone]
        if any(v != values[0] for v in values):
            raise RuntimeError(f"replicas differ after training: {name} checksums {values}")
    if is_main:
        sums_text = ", ".join(f"{name} {values[0]:.6e}" for name, values in sums.items())
        print(f"replicas identical on {len(everyone)} process(es): {sums_text}", flush=True)
    return {name: [s[name] for s in everyone] for name in sums}
