"""Building a run: where it resumes from, the --init weights, the data, the networks and optimisers.

Each function takes what it needs and returns what it builds; `Trainer.__init__`
calls them in the order a reader expects (resolve the options, then data, then
the training state).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

import stylegan_v
from stylegan_v.config import ModelConfig
from stylegan_v.generator import parse_precision
from training import distributed, snapshot
from training.options import RunOptions, recorded_options
from training.presets import TrainPreset
from training.state import RankRng, TrainingState


class TrainingStopped(RuntimeError):
    """The run stopped on purpose with a message for the user (e.g. a snapshot could not be written)."""


# ---- where the run starts from -------------------------------------------------------------

def resume_path(resume: str | None, outdir: Path) -> Path | None:
    """The training state to continue from: --resume latest|auto|FILE; None starts a new run."""
    if resume is None:
        existing = snapshot.find_latest(outdir)
        if existing is not None:
            raise ValueError(f"{outdir} already holds training snapshots (newest {existing.name}); pass "
                             "--resume latest to continue that run, or choose another --outdir")
        return None
    if resume == "auto":  # batch schedulers: continue if there is a snapshot, else start
        return snapshot.find_latest(outdir)
    if resume == "latest":
        path = snapshot.find_latest(outdir)
        if path is None:
            raise FileNotFoundError(f"--resume latest: no training snapshot ({snapshot.STATE_PREFIX}*.safetensors) "
                                    f"in {outdir}")
        return path
    return Path(resume)


def resume_state(resume: str | None, outdir: Path) -> tuple[Path | None, snapshot.StateFile | None]:
    """The training state to continue from, read: (None, None) starts a new run.

    --resume latest|auto take the newest state that reads, so a requeued job whose newest state
    was cut short (a kill mid-write, a full disk) continues from the one before it, with a warning
    naming the skipped file, instead of failing at every restart. A FILE must read as it is.
    """
    if resume not in ("latest", "auto"):
        path = resume_path(resume, outdir)
        return path, snapshot.load_training_state(path) if path else None
    states = snapshot.list_states(outdir)
    for path in reversed(states):
        try:
            return path, snapshot.load_training_state(path)
        except snapshot.TrainingStateError as e:
            warnings.warn(f"--resume {resume}: skipping {path.name}, which does not read ({e})", stacklevel=2)
    if states:
        raise snapshot.TrainingStateError(f"--resume {resume}: none of the {len(states)} training snapshots in "
                                          f"{outdir} reads (see the warnings above)")
    return resume_path(resume, outdir), None  # no state: auto starts, latest says there is none


def recorded(file: snapshot.StateFile, outdir: str) -> RunOptions:
    """The options a training state was written with."""
    state = file.state
    return recorded_options(TrainPreset.from_dict(state["train"]), file.model, int(state["seed"]),
                            str(state.get("data", "")), file.provenance.get("init_from"), outdir=outdir)


@dataclass(frozen=True)
class InitWeights:
    """The networks of an --init checkpoint, read once: G (G_ema's weights when it has no G), G_ema, D or None."""

    path: str
    model: ModelConfig
    G: dict[str, torch.Tensor]
    G_ema: dict[str, torch.Tensor]
    D: dict[str, torch.Tensor] | None


def read_init(path: str) -> InitWeights:
    from stylegan_v.checkpoint import load_state, read_config, resolve_checkpoint

    file = resolve_checkpoint(path)  # an original .pkl is imported once (and cached)
    config, meta = read_config(file)
    present = [n for n in meta.get("nets", "G_ema").split(",") if n]

    def net(name: str) -> dict[str, torch.Tensor]:
        return load_state(file, name, config, present).state_dict()

    G_ema = net("G_ema")  # an --init without G_ema fails here, naming the file
    return InitWeights(path=str(path), model=config, G=net("G") if "G" in present else G_ema, G_ema=G_ema,
                       D=net("D") if "D" in present else None)


# ---- execution ----------------------------------------------------------------------------

@dataclass(frozen=True)
class Runtime:
    dtype: torch.dtype                  # float32, or the dtype of the networks' reduced-precision blocks
    compile: bool
    channels_last: bool
    loss_scaling: bool

    @property
    def precision(self) -> str:
        return str(self.dtype).removeprefix("torch.")


def runtime(opts: RunOptions, device: torch.device) -> Runtime:
    """How to execute: precision (bfloat16 on CUDA, float32 on CPU by default), compile, memory format."""
    cuda = device.type == "cuda"
    dtype = parse_precision(opts.precision) if opts.precision else (torch.bfloat16 if cuda else torch.float32)
    if opts.loss_scaling and dtype != torch.float16:
        raise ValueError("--loss-scaling applies to --precision fp16 (float16) only")
    return Runtime(dtype=dtype, compile=cuda if opts.compile is None else opts.compile,
                   channels_last=cuda if opts.channels_last is None else opts.channels_last,
                   loss_scaling=opts.loss_scaling)


def usable_cores() -> int:
    """Cores this process may run on, shared by the ranks torchrun started on this machine."""
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def cpu_budget(cores: int, threads: int | None, workers: int | None) -> tuple[int, int]:
    """(torch threads, data workers) that fit `cores` without oversubscribing them.

    Workers default to at most 3 and always leave one core to training; threads default to the
    cores the workers leave. On 2 cores that is 1 thread and 1 worker, the fastest setting measured
    for tiny32 (2 threads with 3 workers ran 7-12x slower).
    """
    if workers is None:
        workers = min(3, cores - 1)
    if threads is None:
        threads = max(1, cores - workers)
    return threads, workers


def configure_backends(rt: Runtime, device: torch.device, threads: int) -> None:
    torch.set_num_threads(threads)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        # The original keeps TF32 off for accuracy; with bf16 the fp32 layers may use it too.
        tf32 = rt.dtype == torch.bfloat16
        torch.backends.cuda.matmul.allow_tf32 = tf32
        torch.backends.cudnn.allow_tf32 = tf32


def check_writable(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise TrainingStopped(f"output folder {outdir} is not writable: {e.strerror or e}") from e


def batch_split(batch: int, world_size: int, batch_gpu: int | None, mbstd_group: int) -> tuple[int, int]:
    """(videos per forward pass, forward passes per iteration) of each rank."""
    if batch % world_size:
        raise ValueError(f"batch {batch} is not divisible by the {world_size} processes")
    per_rank = batch // world_size
    batch_gpu = batch_gpu or per_rank
    if per_rank % batch_gpu:
        raise ValueError(f"--batch-gpu {batch_gpu} does not divide the {per_rank} videos per process")
    group = min(mbstd_group, batch_gpu)
    if batch_gpu % group:
        raise ValueError(f"videos per forward ({batch_gpu}) must be divisible by the minibatch-std group "
                         f"size {group}; choose a batch (or --batch-gpu) that is a multiple of {group}")
    return batch_gpu, per_rank // batch_gpu


# ---- data -------------------------------------------------------------------------------

def build_dataset(data: str, model: ModelConfig, train: TrainPreset, seed: int, quiet: bool):
    """(dataset, frame sampling); checks labels and channels against the model."""
    from training.dataset import FrameSampling, VideoFramesDataset

    g, d = model.generator, model.discriminator
    sampling = FrameSampling(num_frames=d.num_frames, mode=train.sampling, max_dist=train.max_dist)
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        dataset = VideoFramesDataset(data, sampling=sampling, max_num_frames=g.max_num_frames, mirror=train.mirror,
                                     use_labels=g.c_dim > 0, resolution=g.resolution, seed=seed)
    if dataset.label_dim != g.c_dim:
        raise ValueError(f"{data}: labels have dimension {dataset.label_dim}, the model expects c_dim={g.c_dim}")
    if dataset.num_channels != g.img_channels:
        raise ValueError(f"{data}: frames have {dataset.num_channels} channels, the model expects {g.img_channels}")
    return dataset, sampling


# ---- networks and optimisers ---------------------------------------------------------------

def build_state(model: ModelConfig, train: TrainPreset, seed: int, dist: distributed.DistInfo, rt: Runtime,
                rng: RankRng, init: InitWeights | None = None) -> TrainingState:
    """Networks (from `init` or freshly initialised, equal on every rank), optimisers, augmentation."""
    device = dist.device
    with _fork_rng(seed):  # the same initial weights on every rank (then broadcast anyway, as DDP does)
        G = stylegan_v.Generator(model.generator)
        D = stylegan_v.Discriminator(model.discriminator)
    if init is not None:
        G.load_state_dict(init.G)
        if init.D is not None:
            D.load_state_dict(init.D)
        elif dist.is_main:
            warnings.warn(f"--init {init.path} has no discriminator; D starts from random weights", stacklevel=2)
    G_ema = copy.deepcopy(G)
    if init is not None:
        G_ema.load_state_dict(init.G_ema)
    for net in (G, D, G_ema):
        net.model_config = model
        net.to(device)
        distributed.broadcast_module(net)
    G.train().requires_grad_(False)
    D.train().requires_grad_(False)
    G_ema.eval().requires_grad_(False)
    # Training times stay below the clip length, where float32 motion is exact enough, and float64
    # is slow on most GPUs; G_ema (samples, metrics, exports) keeps the library's exact default.
    G.set_motion_precision("float32")
    if rt.dtype != torch.float32:
        G.set_precision(rt.dtype)
        D.set_precision(rt.dtype)
    if rt.channels_last:
        G.to(memory_format=torch.channels_last)
        D.to(memory_format=torch.channels_last)

    augment_pipe = ada = None
    if train.augment != "none":
        from training.augment import AdaController, AugmentPipe, require_twice_differentiable_grid_sample

        require_twice_differentiable_grid_sample()
        augment_pipe = AugmentPipe(p=train.augment_p).to(device)
        if train.augment == "ada":
            ada = AdaController(batch_size=train.batch, target=train.ada_target, interval=train.ada_interval,
                                ada_kimg=train.ada_kimg)
    fused = device.type == "cuda"
    scaler = (lambda: torch.amp.GradScaler(device.type)) if rt.loss_scaling else (lambda: None)
    return TrainingState(
        G=G, D=D, G_ema=G_ema, rng=rng, augment_pipe=augment_pipe, ada=ada,
        G_opt=_adam(G, train.g_lr, train.betas, train.eps, train.g_reg_interval, fused),
        D_opt=_adam(D, train.d_lr, train.betas, train.eps, train.d_reg_interval, fused),
        G_scaler=scaler(), D_scaler=scaler())


def _adam(module: torch.nn.Module, lr: float, betas: tuple[float, float], eps: float, reg_interval: int | None,
          fused: bool) -> torch.optim.Adam:
    # Lazy regularisation runs one extra step per `interval` iterations; StyleGAN2 rescales
    # lr and beta by interval / (interval + 1) so that the per-iteration dynamics stay the same.
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    betas = (float(betas[0] ** ratio), float(betas[1] ** ratio))
    kwargs = {"fused": True} if fused else {}
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=betas, eps=eps, **kwargs)


def compiled(G: torch.nn.Module, D: torch.nn.Module, rt: Runtime) -> tuple:
    """The G and D the main passes run through. R1 needs a double backward, which compiled graphs
    do not support: it runs through the eager D (same parameters)."""
    if not rt.compile:
        return G, D
    return torch.compile(G), torch.compile(D)


def with_dataset_fps(model: ModelConfig, dataset) -> ModelConfig:
    """The dataset records its frame rate (training.prepare); exports must carry it."""
    fps = getattr(dataset, "fps", None)
    return dataclasses.replace(model, dataset_fps=float(fps)) if fps else model


@contextlib.contextmanager
def _fork_rng(seed: int):
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(state)
