"""The training state: everything a resumed run continues from, as one object.

Networks (G, D, G_ema), optimisers and loss scalers, augmentation (p and the ADA
controller), counters, the best-metric record and the random streams, with
`state_dict()` / `load_state_dict()` as torch modules have them.
training.snapshot writes the dict to a file and reads it back.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from training import distributed


@dataclass
class Counters:
    cur_nframes: int = 0                # real frames shown to D (the original's kimg: batch x F_D per iteration)
    cur_nvideos: int = 0                # clips (EMA and ADA count these)
    batch_idx: int = 0
    cur_tick: int = 0
    tick_start_nframes: int = 0
    last_snap_nframes: int = 0
    last_sample_nframes: int = 0
    last_metric_nframes: int = 0
    data_items: int = 0                 # clips this rank has consumed (resumes the data stream)
    elapsed_s: float = 0.0


class RankRng:
    """One rank's random streams: torch's global generator (CPU and CUDA) and a numpy one for fake inputs."""

    def __init__(self, seed: int, rank: int, world_size: int, device: torch.device):
        self.seed, self.rank, self.world_size, self.device = seed, rank, world_size, device
        torch.manual_seed(seed * world_size + rank)
        self.numpy = np.random.default_rng([seed, rank])

    def state(self) -> dict:
        cuda = torch.cuda.get_rng_state(self.device) if self.device.type == "cuda" else None
        return {"torch_cpu": torch.get_rng_state(), "torch_cuda": cuda, "numpy": self.numpy.bit_generator.state}

    def load(self, states: list[dict], position: int) -> bool:
        """This rank's saved streams; True if restored. Saved by another number of ranks, the
        per-rank streams cannot be matched: they are reseeded from `position` (the iteration)."""
        if len(states) == self.world_size:
            state = states[self.rank]
            torch.set_rng_state(state["torch_cpu"])
            if self.device.type == "cuda" and state.get("torch_cuda") is not None:
                torch.cuda.set_rng_state(state["torch_cuda"], self.device)
            self.numpy.bit_generator.state = state["numpy"]
            return True
        sequence = np.random.SeedSequence([self.seed, self.rank, position])
        torch.manual_seed(int(sequence.generate_state(1)[0]))
        self.numpy = np.random.default_rng([self.seed, self.rank, position])
        return False


class TrainingState:
    def __init__(self, *, G: torch.nn.Module, D: torch.nn.Module, G_ema: torch.nn.Module, G_opt: torch.optim.Optimizer,
                 D_opt: torch.optim.Optimizer, rng: RankRng, augment_pipe=None, ada=None,
                 G_scaler: torch.amp.GradScaler | None = None, D_scaler: torch.amp.GradScaler | None = None):
        self.G, self.D, self.G_ema = G, D, G_ema
        self.G_opt, self.D_opt = G_opt, D_opt
        self.G_scaler, self.D_scaler = G_scaler, D_scaler
        self.augment_pipe, self.ada = augment_pipe, ada
        self.rng = rng
        self.counters = Counters()
        self.best: dict = {}                # the best metric so far: {"metric", "value", "kimg", "snapshot"}

    def _scalers(self) -> dict[str, torch.amp.GradScaler]:
        return {k: s for k, s in (("G", self.G_scaler), ("D", self.D_scaler)) if s is not None}

    def state_dict(self) -> dict:
        """Every rank must call: "rng" holds the streams of all ranks (rank 0's dict is the one to save)."""
        rng = dict(self.rng.state(), data_items=self.counters.data_items)
        return {
            "G": self.G.state_dict(), "D": self.D.state_dict(), "G_ema": self.G_ema.state_dict(),
            "G_opt": self.G_opt.state_dict(), "D_opt": self.D_opt.state_dict(),
            "scalers": {k: s.state_dict() for k, s in self._scalers().items()},
            "augment_p": self.augment_pipe.p.detach().clone() if self.augment_pipe is not None else None,
            "ada": self.ada.state_dict() if self.ada is not None else None,
            "counters": dataclasses.asdict(self.counters),
            "best": dict(self.best),
            "rng": distributed.gather_objects(rng),  # collective
        }

    def load_state_dict(self, sd: dict) -> None:
        for name in ("G", "D", "G_ema"):
            getattr(self, name).load_state_dict(sd[name], strict=True)
        self.G_opt.load_state_dict(sd["G_opt"])
        self.D_opt.load_state_dict(sd["D_opt"])
        for key, scaler in self._scalers().items():
            if key in sd["scalers"]:
                scaler.load_state_dict(sd["scalers"][key])
        if self.augment_pipe is not None and sd["augment_p"] is not None:
            self.augment_pipe.p.copy_(sd["augment_p"].reshape(()))
        if self.ada is not None and sd["ada"]:
            self.ada.load_state_dict(sd["ada"])
        self.counters = Counters(**sd["counters"])
        self.best = dict(sd["best"])
        if self.rng.load(sd["rng"], position=self.counters.batch_idx):
            self.counters.data_items = int(sd["rng"][self.rng.rank]["data_items"])
        else:
            self.counters.data_items = self.counters.cur_nvideos // self.rng.world_size
