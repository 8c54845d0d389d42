"""The StyleGAN-V training loop (spec 3-4): phases, EMA, ADA, ticks, snapshots, resume.

One iteration = Gmain (G step), Dmain (D step) and, every `d_reg_interval`
iterations, Dreg (a separate D step on the lazy R1 loss), as in the original;
Greg does nothing in StyleGAN-V (path-length regularisation is off) and is
skipped. Each phase draws fresh latents, labels and fake timestamps.

Counters: `cur_nframes` counts real frames shown to D (the original's kimg:
batch x F_D per iteration); `cur_nvideos` counts clips (EMA and ADA use it).
The hot loop never reads device values: losses and ADA signs accumulate on the
device and are read once per tick (ADA's controller syncs every 4 iterations).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import math
import os
import shutil
import signal
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

import stylegan_v
from stylegan_v.config import ModelConfig
from training import distributed, loss, snapshot
from training.flops import iteration_cost, peak_flops
from training.logging_utils import DeviceStats, RunLog, format_duration
from training.presets import TrainPreset

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class RunOptions:
    """Everything a run needs; `train` and `model` are the run's identity (stored in snapshots)."""

    data: str
    outdir: str
    train: TrainPreset | None = None    # None only when resuming (the snapshot's is used)
    model: ModelConfig | None = None    # None: the training preset's model
    seed: int = 0
    kimg: float | None = None           # overrides train.total_kimg (also when resuming)
    snap: float | None = None           # overrides train.snap_kimg
    tick: float | None = None           # overrides train.tick_kimg
    dataset_fps: float | None = None    # recorded in exports; overrides the model preset's
    resume: str | None = None           # "latest", "auto" (latest if any, else fresh) or a training-state file
    init: str | None = None             # weights to start from (.pkl or ours)
    device: str | None = None           # "cuda" | "cpu" | None (auto)
    precision: str | None = None        # fp32 | bf16 | fp16; None: bf16 on CUDA, fp32 on CPU
    loss_scaling: bool = False          # dynamic loss scaling, fp16 only
    compile: bool | None = None         # None: on for CUDA, off on CPU
    channels_last: bool | None = None   # None: on for CUDA
    batch_gpu: int | None = None        # videos per forward per rank (gradient accumulation below batch)
    workers: int = 3
    keep: int = 3                       # training snapshots kept (exports are all kept)
    sample_kimg: float | None = None    # sample video every this many kimg; None: with snapshots, 0: never
    sample_videos: int | None = None    # None: a grid of at most 2048x2048 pixels, 16 videos at most
    sample_frames: int = 64
    metrics: tuple[str, ...] = ()
    metrics_kimg: float | None = None   # None: with snapshots
    metrics_num: int | None = None      # smaller sample count for quick looks (named honestly by the metric)
    peak_tflops: float | None = None    # for MFU when the device is not in flops.PEAK_TFLOPS
    tensorboard: bool = True
    verify_replicas: bool = False       # compare parameter checksums across ranks at the end
    log_every_iter: bool = False


@dataclass
class Counters:
    cur_nframes: int = 0
    cur_nvideos: int = 0
    batch_idx: int = 0
    cur_tick: int = 0
    tick_start_nframes: int = 0
    last_snap_nframes: int = 0
    last_sample_nframes: int = 0
    last_metric_nframes: int = 0
    data_items: int = 0                 # clips this rank has consumed (resumes the data stream)
    elapsed_s: float = 0.0


class TrainingStopped(RuntimeError):
    """The run stopped on purpose with a message for the user (e.g. a snapshot could not be written)."""


def _optimizer(module: torch.nn.Module, lr: float, betas: tuple[float, float], eps: float,
               reg_interval: int | None, fused: bool) -> torch.optim.Adam:
    # Lazy regularisation runs one extra step per `interval` iterations; StyleGAN2
    # rescales lr and beta so that the per-iteration dynamics stay the same.
    ratio = reg_interval / (reg_interval + 1) if reg_interval else 1.0
    betas = (float(betas[0] ** ratio), float(betas[1] ** ratio))
    kwargs = {"fused": True} if fused else {}
    return torch.optim.Adam(module.parameters(), lr=lr * ratio, betas=betas, eps=eps, **kwargs)


def _leave_stop_signals_to_trainer(worker_id: int) -> None:
    """SLURM and `kill -- -PGID` signal every process of the job: a data worker that died of the
    SIGTERM would crash the trainer before it saves. Workers ignore it; they end with the trainer."""
    for name in Trainer.STOP_SIGNALS:
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), signal.SIG_IGN)


class Trainer:
    def __init__(self, opts: RunOptions, dist_info: distributed.DistInfo | None = None):
        self.opts = opts
        self.dist = dist_info or distributed.init(opts.device)
        self.device = self.dist.device
        self.outdir = Path(opts.outdir)
        cuda = self.device.type == "cuda"
        self.precision = opts.precision or ("bf16" if cuda else "fp32")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if opts.loss_scaling and self.precision != "fp16":
            raise ValueError("--loss-scaling applies to --precision fp16 only")
        self.use_compile = opts.compile if opts.compile is not None else cuda
        self.channels_last = opts.channels_last if opts.channels_last is not None else cuda

        resume_path = self._resume_path()
        resumed = snapshot.load_training_state(resume_path) if resume_path else None
        if resumed is not None:
            # The run's identity comes from the snapshot; the command line may only
            # change how long it runs and how it is executed.
            _, state, model = resumed
            train = TrainPreset.from_dict(state["train"])
            self.seed = int(state["seed"])
        else:
            if opts.train is None:
                raise ValueError("a training preset is needed unless resuming")
            train = opts.train
            model = opts.model or train.model_config()
            self.seed = opts.seed
        self.init_meta: dict = {}
        if resumed is None:
            if opts.init:
                model, train = self._init_config(opts.init, model, train)
            else:
                model = _match_d_sampling(model, train.sampling)
            if opts.dataset_fps:
                model = dataclasses.replace(model, dataset_fps=float(opts.dataset_fps))
        # How long and how often: the command line wins, also when resuming.
        train = train.with_overrides(total_kimg=opts.kimg, snap_kimg=opts.snap, tick_kimg=opts.tick)
        self.train, self.model = train, model
        self._setup_runtime(cuda)
        self._build_data()
        if resumed is None and opts.dataset_fps is None and getattr(self.dataset, "fps", None):
            # The dataset records its frame rate (training.prepare); exports must carry it.
            self.model = dataclasses.replace(self.model, dataset_fps=float(self.dataset.fps))
        self._check_batch()
        if self.dist.is_main:
            _check_writable(self.outdir)  # after the input checks: a typo must not leave empty folders
        self._build_networks(resumed)
        self._build_optim()
        self.counters = Counters()
        self.best: dict = {}
        if resumed is not None:
            self._restore(resumed, resume_path)
        self.cost = iteration_cost(self.model, self.train.batch, self.train.d_reg_interval)
        name = torch.cuda.get_device_name(self.device) if cuda else None
        self.peak = opts.peak_tflops * 1e12 if opts.peak_tflops else peak_flops(name)
        self.log = RunLog(self.outdir, self.dist.is_main, tensorboard=opts.tensorboard)
        self.stats = DeviceStats(self.device)
        self.stop_requested = False
        self.stopped_by_signal = False

    # ---- setup ------------------------------------------------------------------------

    def _resume_path(self) -> Path | None:
        opts = self.opts
        if opts.resume is None:
            existing = snapshot.find_latest(self.outdir)
            if existing is not None:
                raise ValueError(f"{self.outdir} already holds training snapshots (newest {existing.name}); pass "
                                 "--resume latest to continue that run, or choose another --outdir")
            return None
        if opts.resume == "auto":  # batch schedulers: continue if there is a snapshot, else start
            return snapshot.find_latest(self.outdir)
        if opts.resume == "latest":
            path = snapshot.find_latest(self.outdir)
            if path is None:
                raise FileNotFoundError(f"--resume latest: no training snapshot ({snapshot.STATE_PREFIX}*.safetensors) "
                                        f"in {self.outdir}")
            return path
        return Path(opts.resume)

    def _init_config(self, path: str, model: ModelConfig, train: TrainPreset) -> tuple[ModelConfig, TrainPreset]:
        """Fine-tuning: the architecture is the checkpoint's; training uses transfer-learning settings."""
        G_init = stylegan_v.load(path, net="G_ema")
        init_model = G_init.model_config
        if init_model.generator.resolution != model.generator.resolution:
            warnings.warn(f"--init {path} is {init_model.generator.resolution}x{init_model.generator.resolution}; "
                          f"using its architecture instead of the preset's {model.generator.resolution}", stacklevel=2)
        self.init_meta = {"init_from": str(path)}
        d_kind = init_model.discriminator.sampling_type
        if (train.sampling == "uniform") != (d_kind == "uniform"):
            raise ValueError(f"--init {path} has a discriminator for '{d_kind}' frame sampling; the run asks for "
                             f"'{train.sampling}' (pass --sampling {d_kind})")
        return init_model, train.for_fine_tuning()

    def _setup_runtime(self, cuda: bool) -> None:
        torch.manual_seed(self.seed * self.dist.world_size + self.dist.rank)
        self.np_rng = np.random.default_rng([self.seed, self.dist.rank])
        if cuda:
            torch.backends.cudnn.benchmark = True
            # The original keeps TF32 off for accuracy; with bf16 the fp32 layers may use it too.
            tf32 = self.precision == "bf16"
            torch.backends.cuda.matmul.allow_tf32 = tf32
            torch.backends.cudnn.allow_tf32 = tf32

    def _build_data(self) -> None:
        from training.dataset import FrameSampling, VideoFramesDataset

        g, d = self.model.generator, self.model.discriminator
        self.sampling = FrameSampling(num_frames=d.num_frames, mode=self.train.sampling, max_dist=self.train.max_dist)
        with warnings.catch_warnings():
            if not self.dist.is_main:
                warnings.simplefilter("ignore")
            self.dataset = VideoFramesDataset(self.opts.data, sampling=self.sampling, max_num_frames=g.max_num_frames,
                                              mirror=self.train.mirror, use_labels=g.c_dim > 0,
                                              resolution=g.resolution, seed=self.seed)
        if self.dataset.label_dim != g.c_dim:
            raise ValueError(f"{self.opts.data}: labels have dimension {self.dataset.label_dim}, the model expects "
                             f"c_dim={g.c_dim}")
        if self.dataset.num_channels != g.img_channels:
            raise ValueError(f"{self.opts.data}: frames have {self.dataset.num_channels} channels, the model expects "
                             f"{g.img_channels}")
        self.item_lengths = self.dataset.item_lengths

    def _build_networks(self, resumed) -> None:
        # Same initial weights on every rank (then broadcast anyway, like DDP does).
        with _fork_rng(self.seed):
            G = stylegan_v.Generator(self.model.generator)
            D = stylegan_v.Discriminator(self.model.discriminator)
        if resumed is None and self.opts.init:
            self._load_init(G, D, self.opts.init)
        G_ema = copy.deepcopy(G)
        if resumed is None and self.opts.init and self.init_meta.get("has_G_ema"):
            G_ema.load_state_dict(stylegan_v.load(self.opts.init, net="G_ema").state_dict())
        for net in (G, D, G_ema):
            net.model_config = self.model
            net.to(self.device)
        distributed.broadcast_module(G)
        distributed.broadcast_module(D)
        distributed.broadcast_module(G_ema)
        G.train().requires_grad_(False)
        D.train().requires_grad_(False)
        G_ema.eval().requires_grad_(False)
        if self.precision != "fp32":
            dtype = "bfloat16" if self.precision == "bf16" else "float16"
            G.set_precision(dtype)
            D.set_precision(dtype)
        if self.channels_last:
            G.to(memory_format=torch.channels_last)
            D.to(memory_format=torch.channels_last)
        self.G, self.D, self.G_ema = G, D, G_ema
        self.w_avg_buffers = [b for name, b in G.named_buffers() if name.endswith("w_avg")]
        self.G_fwd, self.D_fwd = G, D
        if self.use_compile:
            # R1 needs a double backward, which compiled graphs do not support: it
            # runs through the eager D (same parameters).
            self.G_fwd = torch.compile(G)
            self.D_fwd = torch.compile(D)
        self.augment_pipe = None
        self.ada = None
        if self.train.augment != "none":
            from training.augment import AdaController, AugmentPipe

            self.augment_pipe = AugmentPipe(p=self.train.augment_p).to(self.device)
            if self.train.augment == "ada":
                self.ada = AdaController(batch_size=self.train.batch, target=self.train.ada_target,
                                         interval=self.train.ada_interval, ada_kimg=self.train.ada_kimg)

    def _load_init(self, G, D, path: str) -> None:
        nets = stylegan_v.load(path, net="G_ema").checkpoint_metadata.get("nets", "G_ema").split(",")
        source = "G" if "G" in nets else "G_ema"
        G.load_state_dict(stylegan_v.load(path, net=source).state_dict())
        self.init_meta["has_G_ema"] = "G_ema" in nets
        if "D" in nets:
            D.load_state_dict(stylegan_v.load(path, net="D").state_dict())
        elif self.dist.is_main:
            warnings.warn(f"--init {path} has no discriminator; D starts from random weights", stacklevel=2)

    def _check_batch(self) -> None:
        world = self.dist.world_size
        batch = self.train.batch
        if batch % world:
            raise ValueError(f"batch {batch} is not divisible by the {world} processes")
        per_rank = batch // world
        self.batch_gpu = self.opts.batch_gpu or per_rank
        if per_rank % self.batch_gpu:
            raise ValueError(f"--batch-gpu {self.batch_gpu} does not divide the {per_rank} videos per process")
        self.rounds = per_rank // self.batch_gpu
        group = min(self.model.discriminator.mbstd_group_size, self.batch_gpu)
        if self.batch_gpu % group:
            raise ValueError(f"videos per forward ({self.batch_gpu}) must be divisible by the minibatch-std group "
                             f"size {group}; choose a batch (or --batch-gpu) that is a multiple of {group}")

    def _build_optim(self) -> None:
        t = self.train
        fused = self.device.type == "cuda"
        self.G_opt = _optimizer(self.G, t.g_lr, t.betas, t.eps, t.g_reg_interval, fused)
        self.D_opt = _optimizer(self.D, t.d_lr, t.betas, t.eps, t.d_reg_interval, fused)
        scaling = self.opts.loss_scaling and self.precision == "fp16"
        self.G_scaler = torch.amp.GradScaler(self.device.type) if scaling else None
        self.D_scaler = torch.amp.GradScaler(self.device.type) if scaling else None
        self.gamma = t.gamma(self.model.generator.resolution)

    # ---- data -------------------------------------------------------------------------

    def _loader(self):
        from training.dataset import VideoClipStream

        stream = VideoClipStream(self.dataset, seed=self.seed, rank=self.dist.rank, world_size=self.dist.world_size,
                                 start=self.counters.data_items)
        workers = self.opts.workers
        kwargs = dict(batch_size=self.batch_gpu, num_workers=workers, pin_memory=self.device.type == "cuda")
        if workers > 0:
            kwargs.update(prefetch_factor=2, persistent_workers=True, worker_init_fn=_leave_stop_signals_to_trainer)
        return iter(torch.utils.data.DataLoader(stream, **kwargs))

    def _real_batch(self, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        item = next(loader)
        self.counters.data_items += self.batch_gpu
        frames = item["frames"].to(self.device, non_blocking=True)  # uint8 [B, F, C, H, W]
        frames = frames.flatten(0, 1).to(torch.float32) / 127.5 - 1
        if self.channels_last:
            frames = frames.contiguous(memory_format=torch.channels_last)
        c = item["label"].to(self.device, non_blocking=True).float()
        t = item["times"].to(self.device, non_blocking=True)
        return frames, c, t

    @property
    def fake_max_t(self) -> float:
        # Fake clips lie inside videos capped at max_num_frames, so this bounds every fake t on the host,
        # and it is the bound the original uses for the noise length anyway: same motion_z, no device sync.
        return float(self.model.generator.max_num_frames - 1)

    def _fake_inputs(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        from training.dataset import sample_fake_times

        indices, times = sample_fake_times(self.np_rng, self.item_lengths, self.batch_gpu, self.sampling)
        c = torch.from_numpy(self.dataset.get_labels(indices)).to(self.device, non_blocking=True)
        t = torch.from_numpy(times).to(self.device, non_blocking=True)
        z = torch.randn([self.batch_gpu, self.model.generator.z_dim], device=self.device)
        return z, c, t

    # ---- phases -----------------------------------------------------------------------

    def _autocast(self):
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def _augment(self):
        return self.augment_pipe if self.augment_pipe is not None else None

    def _backward(self, value: torch.Tensor, scaler) -> None:
        (scaler.scale(value) if scaler is not None else value).backward()

    def _step(self, module: torch.nn.Module, opt: torch.optim.Optimizer, scaler) -> None:
        params = [p for p in module.parameters() if p.grad is not None]
        if scaler is None:
            distributed.reduce_gradients(params)
            opt.step()
        else:
            # Reduce first so every rank sees the same overflow and skips the same steps.
            distributed.reduce_gradients(params, finite=False)
            scaler.unscale_(opt)
            scaler.step(opt)
            scaler.update()
        opt.zero_grad(set_to_none=True)

    def g_main(self) -> None:
        self.G.requires_grad_(True)
        for _ in range(self.rounds):
            z, c, t = self._fake_inputs()
            with self._autocast():
                value, logits = loss.generator_loss(self.G_fwd, self.D_fwd, z, c, t, self._augment(),
                                                    max_t=self.fake_max_t)
            self.stats.add("Loss/G/loss", value)
            self.stats.add("Loss/scores/fake", logits)
            self._backward(value / self.rounds, self.G_scaler)
        self.G.requires_grad_(False)
        self._step(self.G, self.G_opt, self.G_scaler)

    def d_main(self, reals: list) -> None:
        self.D.requires_grad_(True)
        for real, real_c, real_t in reals:
            z, c, t = self._fake_inputs()
            with self._autocast():
                fake_value, fake_logits = loss.discriminator_fake_loss(self.G_fwd, self.D_fwd, z, c, t, self._augment(),
                                                                       max_t=self.fake_max_t)
            self._backward(fake_value / self.rounds, self.D_scaler)
            with self._autocast():
                real_value, real_logits = loss.discriminator_real_loss(self.D_fwd, real, real_c, real_t,
                                                                       self._augment())
            self._backward(real_value / self.rounds, self.D_scaler)
            self.stats.add("Loss/D/loss", fake_value + real_value)
            self.stats.add("Loss/scores/real", real_logits)
            self.stats.add("Loss/signs/real", real_logits.sign())
            if self.ada is not None:
                self.ada.accumulate(real_logits)
        self.D.requires_grad_(False)
        self._step(self.D, self.D_opt, self.D_scaler)

    def d_reg(self, reals: list) -> None:
        self.D.requires_grad_(True)
        for real, real_c, real_t in reals:
            with self._autocast():
                value, logits = loss.r1_loss(self.D, real, real_c, real_t, self.gamma, self.train.d_reg_interval,
                                             self._augment())
            self.stats.add("Loss/r1_penalty", value / (self.gamma / 2 * self.train.d_reg_interval)
                           if self.gamma > 0 else value)
            self.stats.add("Loss/signs/real", logits.sign())
            if self.ada is not None:
                self.ada.accumulate(logits)
            self._backward(value / self.rounds, self.D_scaler)
        self.D.requires_grad_(False)
        self._step(self.D, self.D_opt, self.D_scaler)

    @torch.no_grad()
    def update_ema(self) -> None:
        half_life = self.train.ema_half_life_videos()
        if self.train.ema_rampup is not None:
            # The original ramps up on frames seen; we use videos, the unit of the half-life.
            half_life = min(half_life, self.counters.cur_nvideos * self.train.ema_rampup)
        beta = 0.5 ** (self.train.batch / max(half_life, 1e-8))
        ema_params = list(self.G_ema.parameters())
        params = list(self.G.parameters())
        torch._foreach_lerp_(ema_params, params, 1.0 - beta)
        for b_ema, b in zip(self.G_ema.buffers(), self.G.buffers()):
            b_ema.copy_(b)

    def train_step(self, loader) -> None:
        reals = [self._real_batch(loader) for _ in range(self.rounds)]
        self.g_main()
        self.d_main(reals)
        if self.counters.batch_idx % self.train.d_reg_interval == 0 and self.gamma > 0:
            self.d_reg(reals)
        # G's w_avg moves with each rank's own latents. The update is linear, so the mean
        # over ranks equals the single-process value for the whole batch (the original
        # lets the copies drift apart and saves rank 0's).
        distributed.average_tensors(self.w_avg_buffers)
        self.update_ema()
        c = self.counters
        c.batch_idx += 1
        c.cur_nvideos += self.train.batch
        c.cur_nframes += self.train.batch * self.model.discriminator.num_frames
        if self.ada is not None:
            self.ada.step(self.augment_pipe.p)

    # ---- run --------------------------------------------------------------------------

    def run(self, max_iterations: int | None = None) -> Counters:
        """Train until `train.total_kimg` (frames) or `max_iterations` more iterations."""
        c = self.counters
        total = int(self.train.total_kimg * 1000)
        self._announce()
        loader = self._loader()
        tick_start = time.perf_counter()
        start_time = time.perf_counter() - c.elapsed_s
        c.tick_start_nframes = c.cur_nframes
        tick_iters = 0
        done_iters = 0
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)
        previous = self._catch_signals()
        try:
            while True:
                if c.cur_nframes >= total or (max_iterations is not None and done_iters >= max_iterations):
                    break
                self.train_step(loader)
                done_iters += 1
                tick_iters += 1
                done = c.cur_nframes >= total or (max_iterations is not None and done_iters >= max_iterations)
                if not done and c.cur_nframes < c.tick_start_nframes + self.train.tick_kimg * 1000 \
                        and not self.opts.log_every_iter:
                    continue
                now = time.perf_counter()
                c.elapsed_s = now - start_time
                self._tick(now - tick_start, tick_iters)
                tick_start, tick_iters = time.perf_counter(), 0
                c.tick_start_nframes = c.cur_nframes
                c.cur_tick += 1
                if self._agree_to_stop():
                    # Preemption (SIGTERM / SIGUSR1): save and leave; --resume latest|auto continues.
                    if c.last_snap_nframes != c.cur_nframes:
                        self.save_snapshot()
                    self.stopped_by_signal = True
                    self.log.print(f"stopped on signal at kimg {c.cur_nframes / 1000:g}; snapshot saved, continue "
                                   "with --resume latest")
                    break
                self._maintenance(done)
        finally:
            self._restore_signals(previous)
            self.log.close()
        if self.opts.verify_replicas:
            self.verify_replicas()
        return c

    # ---- preemption ---------------------------------------------------------------------

    STOP_SIGNALS = ("SIGTERM", "SIGUSR1")

    def _catch_signals(self) -> dict:
        """SIGTERM/SIGUSR1 ask for a snapshot and a clean exit at the next tick (SLURM: --signal=USR1@120)."""
        previous = {}
        for name in self.STOP_SIGNALS:
            sig = getattr(signal, name, None)
            if sig is None:
                continue
            try:
                previous[sig] = signal.signal(sig, self._on_signal)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return previous

    def _on_signal(self, signum, frame) -> None:
        self.stop_requested = True

    @staticmethod
    def _restore_signals(previous: dict) -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    def _agree_to_stop(self) -> bool:
        """True on every rank if any rank was signalled (a collective, at tick boundaries only)."""
        if not distributed.active():
            return self.stop_requested
        flag = torch.tensor([1.0 if self.stop_requested else 0.0], device=self.device)
        return bool(distributed.all_reduce_sum(flag).item() > 0)

    def _announce(self) -> None:
        if not self.dist.is_main:
            return
        g = self.model.generator
        gflop = self.cost.per_frame / 1e9
        self.log.print(
            f"StyleGAN-V training: {self.model.name} {g.resolution}x{g.resolution}, preset {self.train.name}, "
            f"{self.dist.world_size} process(es) on {self.device.type}, batch {self.train.batch} videos x "
            f"{self.model.discriminator.num_frames} frames ({self.batch_gpu} per forward, {self.rounds} round(s)), "
            f"precision {self.precision}, compile {'on' if self.use_compile else 'off'}, "
            f"R1 gamma {self.gamma:g}, {gflop:.1f} GFLOP per frame")
        mirrored = " (+ mirrored)" if self.train.mirror else ""
        self.log.print(f"data: {self.opts.data}: {self.dataset.num_videos} videos{mirrored}; "
                       f"output: {self.outdir}; from kimg {self.counters.cur_nframes / 1000:.1f} "
                       f"to {self.train.total_kimg:g}")

    def _tick(self, seconds: float, iters: int) -> None:
        c = self.counters
        values = self.stats.collect()  # the one host sync per tick
        kimg = iters * self.train.batch * self.model.discriminator.num_frames / 1000
        sec_per_kimg = seconds / max(kimg, 1e-12)
        flops = self.cost.per_iteration * iters / max(seconds, 1e-12) / self.dist.world_size
        mfu = flops / self.peak if self.peak else None
        if self.device.type == "cuda":
            mem = torch.cuda.max_memory_allocated(self.device) / 2**30
            torch.cuda.reset_peak_memory_stats(self.device)
        else:
            import resource

            mem = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
        p = float(self.augment_pipe.p) if self.augment_pipe is not None else 0.0
        entry = {
            "tick": c.cur_tick, "kimg": c.cur_nframes / 1000, "kvideos": c.cur_nvideos / 1000, "iter": c.batch_idx,
            "time_s": c.elapsed_s, "sec_per_tick": seconds, "sec_per_kimg": sec_per_kimg,
            "kimg_per_s": 1 / sec_per_kimg, "tflops_per_gpu": flops / 1e12, "mem_gb": mem, "augment_p": p,
            **values,
        }
        if mfu is not None:
            entry["mfu"] = mfu
        line = (f"tick {c.cur_tick:<5d} kimg {c.cur_nframes / 1000:<9.1f} time {format_duration(c.elapsed_s):<9s} "
                f"sec/kimg {sec_per_kimg:<8.3g} kimg/s {1 / sec_per_kimg:<8.3g} "
                f"MFU {f'{100 * mfu:.1f}%' if mfu is not None else 'n/a':<6s} "
                f"{'gpumem' if self.device.type == 'cuda' else 'cpumem'} {mem:<6.2f} augment {p:<6.3f} "
                f"G {values.get('Loss/G/loss', float('nan')):.3f} D {values.get('Loss/D/loss', float('nan')):.3f}"
                + (f" r1 {values['Loss/r1_penalty']:.4g}" if "Loss/r1_penalty" in values else ""))
        self.log.print(line)
        self.log.record(entry, c.cur_nframes / 1000)
        self.last_tick = entry

    def _maintenance(self, done: bool) -> None:
        c = self.counters
        t = self.train
        snap_due = done or c.cur_nframes - c.last_snap_nframes >= t.snap_kimg * 1000
        export = None
        if snap_due:
            export = self.save_snapshot()
        sample_kimg = self.opts.sample_kimg if self.opts.sample_kimg is not None else t.snap_kimg
        if sample_kimg > 0 and (done or c.cur_nframes - c.last_sample_nframes >= sample_kimg * 1000):
            c.last_sample_nframes = c.cur_nframes
            if self.dist.is_main:
                self.write_samples()
        metrics_kimg = self.opts.metrics_kimg if self.opts.metrics_kimg is not None else t.snap_kimg
        if self.opts.metrics and (done or c.cur_nframes - c.last_metric_nframes >= metrics_kimg * 1000):
            c.last_metric_nframes = c.cur_nframes
            self.evaluate_metrics(export)

    # ---- snapshots --------------------------------------------------------------------

    def _rng_state(self) -> dict:
        state = {"torch_cpu": torch.get_rng_state().tolist(), "numpy": self.np_rng.bit_generator.state,
                 "data_items": self.counters.data_items}
        if self.device.type == "cuda":
            state["torch_cuda"] = torch.cuda.get_rng_state(self.device).tolist()
        return state

    def _provenance(self) -> dict:
        return {"trainer": "stylegan-v-comfy training.train", "run": str(self.outdir.resolve()),
                "preset": self.train.name, "kimg": self.counters.cur_nframes / 1000, "data": str(self.opts.data),
                **self.init_meta}

    def save_snapshot(self) -> Path | None:
        """Training snapshot + G_ema export (rank 0 writes; every rank must call). Returns the export path."""
        c = self.counters
        # Before writing, so the snapshot records itself as the last one; otherwise a resumed run
        # would find a snapshot "due" at its first tick and write a near-duplicate.
        c.last_snap_nframes = c.cur_nframes
        rng_states = distributed.gather_objects(self._rng_state())  # collective
        error = None
        export = None
        if self.dist.is_main:
            try:
                export = self._write_snapshot(rng_states)
            except snapshot.SnapshotError as e:
                error = str(e)
        error = distributed.broadcast_object(error)
        if error is not None:
            latest = snapshot.find_latest(self.outdir)
            keep = f"the last good snapshot {latest} is intact" if latest else "no earlier snapshot exists"
            raise TrainingStopped(f"{error}. Training stopped at kimg {c.cur_nframes / 1000:.1f}; {keep}. "
                                  "Free disk space or fix the folder's permissions, then continue with "
                                  "--resume latest.")
        return export

    def _write_snapshot(self, rng_states: list[dict]) -> Path:
        c = self.counters
        tensors: dict[str, torch.Tensor] = {}
        rng_json = []
        for rank, st in enumerate(rng_states):
            tensors[f"rng.{rank}.torch_cpu"] = torch.tensor(st["torch_cpu"], dtype=torch.uint8)
            if "torch_cuda" in st:
                tensors[f"rng.{rank}.torch_cuda"] = torch.tensor(st["torch_cuda"], dtype=torch.uint8)
            rng_json.append({"numpy": st["numpy"], "data_items": st["data_items"]})
        if self.augment_pipe is not None:
            tensors["augment.p"] = self.augment_pipe.p.detach().reshape(1)
        state = {
            "counters": dataclasses.asdict(c), "train": self.train.to_dict(), "seed": self.seed,
            "world_size": self.dist.world_size, "rng": rng_json, "best": self.best,
            "ada": self.ada.state_dict() if self.ada is not None else None,
            "data": str(self.opts.data), "torch_version": torch.__version__,
            "scalers": {k: s.state_dict() for k, s in (("G", self.G_scaler), ("D", self.D_scaler)) if s is not None},
        }
        provenance = self._provenance()
        path = self.outdir / snapshot.state_name(c.cur_nframes)
        snapshot.save_training_state(path, nets={"G_ema": self.G_ema, "G": self.G, "D": self.D},
                                     optimizers={"G": self.G_opt, "D": self.D_opt}, tensors=tensors, state=state,
                                     model_config=self.model, provenance=provenance)
        export = snapshot.export_generator(self.outdir / snapshot.export_name(c.cur_nframes), self.G_ema,
                                           self.model, provenance)
        removed = snapshot.prune_states(self.outdir, self.opts.keep)
        self.log.print(f"saved {path.name} and {export.name}" + (f" (removed {len(removed)} older)" if removed else ""))
        return export

    def _restore(self, resumed, path: Path) -> None:
        tensors, state, _ = resumed
        for name, net in (("G", self.G), ("D", self.D), ("G_ema", self.G_ema)):
            prefix = f"{name}."
            sd = {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}
            net.load_state_dict(sd, strict=True)
        snapshot.optimizer_from_flat(self.G_opt, "G_opt", tensors, state["optimizers"]["G"])
        snapshot.optimizer_from_flat(self.D_opt, "D_opt", tensors, state["optimizers"]["D"])
        for key, scaler in (("G", self.G_scaler), ("D", self.D_scaler)):
            if scaler is not None and key in state.get("scalers", {}):
                scaler.load_state_dict(state["scalers"][key])
        if self.augment_pipe is not None and "augment.p" in tensors:
            self.augment_pipe.p.copy_(tensors["augment.p"].reshape(()))
        if self.ada is not None and state.get("ada"):
            self.ada.load_state_dict(state["ada"])
        self.counters = Counters(**state["counters"])
        self.best = state.get("best") or {}
        rank = self.dist.rank
        if int(state["world_size"]) == self.dist.world_size:
            torch.set_rng_state(tensors[f"rng.{rank}.torch_cpu"])
            if self.device.type == "cuda" and f"rng.{rank}.torch_cuda" in tensors:
                torch.cuda.set_rng_state(tensors[f"rng.{rank}.torch_cuda"], self.device)
            self.np_rng.bit_generator.state = state["rng"][rank]["numpy"]
            self.counters.data_items = int(state["rng"][rank]["data_items"])
        else:
            # Another world size: per-rank streams cannot be matched; reseed from the position.
            position = np.random.SeedSequence([self.seed, rank, self.counters.batch_idx])
            torch.manual_seed(int(position.generate_state(1)[0]))
            self.np_rng = np.random.default_rng([self.seed, rank, self.counters.batch_idx])
            self.counters.data_items = self.counters.cur_nvideos // self.dist.world_size
        if self.dist.is_main:
            print(f"resumed from {path} at kimg {self.counters.cur_nframes / 1000:g} "
                  f"(iteration {self.counters.batch_idx})", flush=True)

    # ---- samples and metrics ----------------------------------------------------------

    def write_samples(self) -> Path | None:
        from stylegan_v import render
        from stylegan_v.video import write_mp4

        res = self.model.generator.resolution
        n = self.opts.sample_videos or min(16, max(1, (2048 // res) ** 2))
        frames = self.opts.sample_frames
        fps = self.model.dataset_fps
        path = self.outdir / f"samples-{snapshot.kimg_tag(self.counters.cur_nframes)}.mp4"
        try:
            ws = render.sample_content(self.G_ema, self.seed, n, device=self.device)
            c = render.class_labels(self.G_ema, self.seed, n) if self.G_ema.c_dim > 0 else None
            t = render.timestamps(frames, fps=fps, dataset_fps=fps)
            chunks = render.render_chunks(self.G_ema, ws, render.MotionSeed(self.seed, n), t, c=c)
            write_mp4(path, (render.to_uint8(render.grid(f.cpu())) for _, f in chunks), fps=fps)
        except Exception as e:  # a preview must never stop training
            warnings.warn(f"could not write sample video {path}: {e}", stacklevel=2)
            return None
        return path

    def evaluate_metrics(self, export: Path | None) -> dict:
        """Run the metrics hook on G_ema (every rank calls; metrics may shard work) and track the best FVD."""
        try:
            from training.metrics import MissingMetricsExtra, evaluate
        except ImportError as e:
            if self.dist.is_main:
                self.log.print(f"metrics requested but unavailable ({e}); skipping")
            return {}
        try:
            results = evaluate(self.G_ema, self.opts.data, metrics=list(self.opts.metrics),
                               num=self.opts.metrics_num, device=self.device, seed=self.seed, rank=self.dist.rank,
                               world_size=self.dist.world_size)
        except MissingMetricsExtra as e:
            # Metrics are optional: say why once and keep training.
            self.opts = dataclasses.replace(self.opts, metrics=())
            if self.dist.is_main:
                self.log.print(f"metrics disabled: {e}")
            return {}
        if not self.dist.is_main:
            return results
        kimg = self.counters.cur_nframes / 1000
        entry = {"kimg": kimg, "snapshot": export.name if export else None, "results": results}
        with open(self.outdir / "metrics.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")
        self.log.print("metrics: " + ", ".join(f"{k} {v:.4g}" for k, v in results.items()
                                               if isinstance(v, (int, float))))
        # The first FVD requested decides the best snapshot (results keep the requested order).
        fvd = {k: v for k, v in results.items() if k.lower().startswith("fvd") and isinstance(v, (int, float))}
        if fvd and export is not None:
            key = next(iter(fvd))
            if not self.best or fvd[key] < self.best.get("value", math.inf):
                self.best = {"metric": key, "value": fvd[key], "kimg": kimg, "snapshot": export.name}
                snapshot.atomic_write(self.outdir / snapshot.BEST_EXPORT,
                                      lambda tmp: shutil.copyfile(export, tmp), what="best export")
                snapshot.atomic_write_text(self.outdir / "best.json", json.dumps(self.best, indent=2))
                self.log.print(f"new best {key} {fvd[key]:.4g} at kimg {kimg:.1f} -> {snapshot.BEST_EXPORT}")
        return results

    def verify_replicas(self) -> dict[str, list[list[float]]]:
        """Checksums of G, D, G_ema on every rank; raises if any rank differs."""
        nets = [("G", self.G), ("D", self.D), ("G_ema", self.G_ema)]
        if self.augment_pipe is not None:
            nets.append(("augment", self.augment_pipe))
        sums = {name: distributed.module_checksum(net).tolist() for name, net in nets}
        everyone = distributed.gather_objects(sums)
        for name in sums:
            values = [s[name] for s in everyone]
            if any(v != values[0] for v in values):
                raise RuntimeError(f"replicas differ after training: {name} checksums {values}")
        if self.dist.is_main:
            sums_text = ", ".join(f"{name} {values[0]:.6e}" for name, values in sums.items())
            print(f"replicas identical on {len(everyone)} process(es): {sums_text}", flush=True)
        return {name: [s[name] for s in everyone] for name in sums}


def _match_d_sampling(model: ModelConfig, sampling: str) -> ModelConfig:
    """D embeds all gaps of a clip for 'random' sampling but only the first for 'uniform' (the
    original reads the sampling type in D), so a fresh uniform run needs a uniform D."""
    kind = "uniform" if sampling == "uniform" else "random"
    if model.discriminator.sampling_type == kind:
        return model
    return dataclasses.replace(model, discriminator=dataclasses.replace(model.discriminator, sampling_type=kind))


@contextlib.contextmanager
def _fork_rng(seed: int):
    state = torch.get_rng_state()
    torch.manual_seed(seed)
    try:
        yield
    finally:
        torch.set_rng_state(state)


def _check_writable(outdir: Path) -> None:
    try:
        outdir.mkdir(parents=True, exist_ok=True)
        probe = outdir / f".write-test-{os.getpid()}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as e:
        raise TrainingStopped(f"output folder {outdir} is not writable: {e.strerror or e}") from e
