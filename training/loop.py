"""The StyleGAN-V training loop: the phases of an iteration, EMA, ADA, ticks, snapshots.

One iteration = Gmain (G step), Dmain (D step) and, every `d_reg_interval`
iterations, Dreg (a separate D step on the lazy R1 loss), as in the original;
Greg does nothing in StyleGAN-V (path-length regularisation is off) and is
skipped. Each phase draws fresh latents, labels and fake timestamps.

Counters: `cur_nframes` counts real frames shown to D (the original's kimg:
batch x F_D per iteration); `cur_nvideos` counts clips (EMA and ADA use it).
The hot loop never reads device values: losses and ADA signs accumulate on the
device and are read once per tick (ADA's controller syncs every 4 iterations).

Setup lives in training.setup, the options in training.options, everything a
resumed run continues from in training.state.TrainingState.
"""

from __future__ import annotations

import contextlib
import time
import warnings
from pathlib import Path

import torch

from training import distributed, evaluation, loss, options, setup, snapshot
from training.flops import iteration_cost, peak_flops
from training.logging_utils import DeviceStats, RunLog, peak_memory_gb, status_line
from training.options import RunOptions
from training.preemption import StopRequest, ignore_stop_signals
from training.setup import TrainingStopped
from training.state import Counters, RankRng

__all__ = ["Counters", "RunOptions", "Trainer", "TrainingStopped"]


class Trainer:
    def __init__(self, opts: RunOptions, dist_info: distributed.DistInfo | None = None):
        started = time.time()
        self.dist = dist_info or distributed.init(opts.device)
        self.device = self.dist.device
        self.outdir = Path(opts.outdir)
        self.runtime = setup.runtime(opts, self.device)

        # The run's options: the command line's, reconciled with the resumed state's (training.options).
        resume_path, file = setup.resume_state(opts.resume, self.outdir)
        init = setup.read_init(opts.init) if opts.init and file is None else None
        resolved = options.resolve(opts, setup.recorded(file, opts.outdir) if file else None,
                                   init.model if init else None)
        for text in resolved.warnings:
            warnings.warn(text, stacklevel=2)
        self.opts, self.train, self.seed = resolved.options, resolved.train, resolved.options.seed

        self.threads, self.workers = setup.cpu_budget(setup.usable_cores(), self.opts.threads, self.opts.workers)
        setup.configure_backends(self.runtime, self.device, self.threads)
        rng = RankRng(self.seed, self.dist.rank, self.dist.world_size, self.device)
        self.dataset, self.sampling = setup.build_dataset(self.opts.data, resolved.model, self.train, self.seed,
                                                          quiet=not self.dist.is_main)
        fresh_fps = file is None and opts.dataset_fps is None
        self.model = setup.with_dataset_fps(resolved.model, self.dataset) if fresh_fps else resolved.model
        self.batch_gpu, self.rounds = setup.batch_split(self.train.batch, self.dist.world_size, self.opts.batch_gpu,
                                                        self.model.discriminator.mbstd_group_size)
        if self.dist.is_main:
            setup.check_writable(self.outdir)  # after the input checks: a typo must not leave empty folders

        self.state = setup.build_state(self.model, self.train, self.seed, self.dist, self.runtime, rng, init)
        self.log = RunLog(self.outdir, self.dist.is_main, tensorboard=self.opts.tensorboard)
        if self.dist.is_main:  # what a killed run left mid-write (only the trainer's own names, older than us)
            stale = snapshot.remove_stale_temp_files(self.outdir, older_than=started)
            if stale:
                self.log.print(f"removed {len(stale)} temporary file(s) a stopped run left: "
                               + ", ".join(p.name for p in stale))
        if file is not None:
            self.state.load_state_dict(snapshot.read_state_dict(file))
            if "p" in resolved.changed and self.state.augment_pipe is not None:
                self.state.augment_pipe.p.fill_(self.train.augment_p)  # a new --p replaces the saved p
            c = self.state.counters
            self.log.print(f"resumed from {resume_path} at kimg {c.cur_nframes / 1000:g} (iteration {c.batch_idx})")
            for note in resolved.notes:
                self.log.print(f"changed on resume: {note}")
            export = self.outdir / snapshot.export_name(c.cur_nframes)
            if self.dist.is_main and not export.exists():  # a kill between the state and its export
                snapshot.export_generator(export, self.state.G_ema, self.model, file.provenance)
                self.log.print(f"re-exported {export.name} from {resume_path.name}")

        self.G_fwd, self.D_fwd = setup.compiled(self.state.G, self.state.D, self.runtime)
        self.w_avg_buffers = [b for name, b in self.state.G.named_buffers() if name.endswith("w_avg")]
        self.gamma = self.train.gamma(self.model.generator.resolution)
        self.cost = iteration_cost(self.model, self.train.batch, self.train.d_reg_interval)
        name = torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None
        self.peak = self.opts.peak_tflops * 1e12 if self.opts.peak_tflops else peak_flops(name)
        self.stats = DeviceStats(self.device)
        self.metrics = self.opts.metrics
        self.stop = StopRequest()
        self.stopped_by_signal = False

    @property
    def precision(self) -> str:
        return self.runtime.precision

    @property
    def counters(self) -> Counters:
        return self.state.counters

    # ---- inputs -------------------------------------------------------------------------

    def _loader(self):
        from training.dataset import VideoClipStream

        stream = VideoClipStream(self.dataset, seed=self.seed, rank=self.dist.rank, world_size=self.dist.world_size,
                                 start=self.counters.data_items)
        workers = self.workers
        kwargs = dict(batch_size=self.batch_gpu, num_workers=workers, pin_memory=self.device.type == "cuda")
        if workers > 0:
            kwargs.update(prefetch_factor=2, persistent_workers=True, worker_init_fn=ignore_stop_signals)
        return iter(torch.utils.data.DataLoader(stream, **kwargs))

    def _real_batch(self, loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        item = next(loader)
        self.counters.data_items += self.batch_gpu
        frames = item["frames"].to(self.device, non_blocking=True)  # uint8 [B, F, C, H, W]
        frames = frames.flatten(0, 1).to(torch.float32) / 127.5 - 1
        if self.runtime.channels_last:
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

        indices, times = sample_fake_times(self.state.rng.numpy, self.dataset.item_lengths, self.batch_gpu,
                                           self.sampling)
        c = torch.from_numpy(self.dataset.get_labels(indices)).to(self.device, non_blocking=True)
        t = torch.from_numpy(times).to(self.device, non_blocking=True)
        z = torch.randn([self.batch_gpu, self.model.generator.z_dim], device=self.device)
        return z, c, t

    # ---- phases -----------------------------------------------------------------------

    def _autocast(self):
        if self.runtime.dtype == torch.bfloat16:
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

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
        s = self.state
        s.G.requires_grad_(True)
        for _ in range(self.rounds):
            z, c, t = self._fake_inputs()
            with self._autocast():
                value, logits = loss.generator_loss(self.G_fwd, self.D_fwd, z, c, t, s.augment_pipe,
                                                    max_t=self.fake_max_t)
            self.stats.add("Loss/G/loss", value)
            self.stats.add("Loss/scores/fake", logits)
            self._backward(value / self.rounds, s.G_scaler)
        s.G.requires_grad_(False)
        self._step(s.G, s.G_opt, s.G_scaler)

    def d_main(self, reals: list) -> None:
        s = self.state
        s.D.requires_grad_(True)
        for real, real_c, real_t in reals:
            z, c, t = self._fake_inputs()
            with self._autocast():
                fake_value, fake_logits = loss.discriminator_fake_loss(self.G_fwd, self.D_fwd, z, c, t,
                                                                       s.augment_pipe, max_t=self.fake_max_t)
            self._backward(fake_value / self.rounds, s.D_scaler)
            with self._autocast():
                real_value, real_logits = loss.discriminator_real_loss(self.D_fwd, real, real_c, real_t,
                                                                       s.augment_pipe)
            self._backward(real_value / self.rounds, s.D_scaler)
            self.stats.add("Loss/D/loss", fake_value + real_value)
            self.stats.add("Loss/scores/real", real_logits)
            self.stats.add("Loss/signs/real", real_logits.sign())
            if s.ada is not None:
                s.ada.accumulate(real_logits)
        s.D.requires_grad_(False)
        self._step(s.D, s.D_opt, s.D_scaler)

    def d_reg(self, reals: list) -> None:
        s = self.state
        interval = self.train.d_reg_interval
        s.D.requires_grad_(True)
        for real, real_c, real_t in reals:
            with self._autocast():
                value, logits = loss.r1_loss(s.D, real, real_c, real_t, self.gamma, interval, s.augment_pipe)
            self.stats.add("Loss/r1_penalty", value / (self.gamma / 2 * interval) if self.gamma > 0 else value)
            self.stats.add("Loss/signs/real", logits.sign())
            if s.ada is not None:
                s.ada.accumulate(logits)
            self._backward(value / self.rounds, s.D_scaler)
        s.D.requires_grad_(False)
        self._step(s.D, s.D_opt, s.D_scaler)

    @torch.no_grad()
    def update_ema(self) -> None:
        s = self.state
        half_life = self.train.ema_half_life_videos()
        if self.train.ema_rampup is not None:
            # The original ramps up on frames seen; we use videos, the unit of the half-life.
            half_life = min(half_life, s.counters.cur_nvideos * self.train.ema_rampup)
        beta = 0.5 ** (self.train.batch / max(half_life, 1e-8))
        torch._foreach_lerp_(list(s.G_ema.parameters()), list(s.G.parameters()), 1.0 - beta)
        for b_ema, b in zip(s.G_ema.buffers(), s.G.buffers()):
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
        if self.state.ada is not None:
            self.state.ada.step(self.state.augment_pipe.p)

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
        tick_iters = done_iters = 0
        if self.device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(self.device)

        def finished() -> bool:
            return c.cur_nframes >= total or (max_iterations is not None and done_iters >= max_iterations)

        try:
            with self.stop:
                while not finished():
                    self.train_step(loader)
                    done_iters += 1
                    tick_iters += 1
                    done = finished()
                    if not done and not self.opts.log_every_iter \
                            and c.cur_nframes < c.tick_start_nframes + self.train.tick_kimg * 1000:
                        continue
                    now = time.perf_counter()
                    c.elapsed_s = now - start_time
                    self._tick(now - tick_start, tick_iters)
                    tick_start, tick_iters = time.perf_counter(), 0
                    c.tick_start_nframes = c.cur_nframes
                    c.cur_tick += 1
                    if self.stop.agreed(self.device):
                        # Preemption: save and leave; --resume latest|auto continues.
                        if c.last_snap_nframes != c.cur_nframes:
                            self.save_snapshot()
                        self.stopped_by_signal = True
                        self.log.print(f"stopped on signal at kimg {c.cur_nframes / 1000:g}; snapshot saved, "
                                       "continue with --resume latest")
                        break
                    self._maintenance(done)
        finally:
            self.log.close()
        if self.opts.verify_replicas:
            s = self.state
            nets = {"G": s.G, "D": s.D, "G_ema": s.G_ema}
            if s.augment_pipe is not None:
                nets["augment"] = s.augment_pipe
            distributed.verify_replicas(nets, self.dist.is_main)
        return c

    def _announce(self) -> None:
        g = self.model.generator
        self.log.print(
            f"StyleGAN-V training: {self.model.name} {g.resolution}x{g.resolution}, preset {self.train.name}, "
            f"{self.dist.world_size} process(es) on {self.device.type}, batch {self.train.batch} videos x "
            f"{self.model.discriminator.num_frames} frames ({self.batch_gpu} per forward, {self.rounds} round(s)), "
            f"precision {self.precision}, compile {'on' if self.runtime.compile else 'off'}, "
            f"{self.threads} thread(s) and {self.workers} data worker(s) per process, "
            f"R1 gamma {self.gamma:g}, {self.cost.per_frame / 1e9:.1f} GFLOP per frame")
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
        pipe = self.state.augment_pipe
        entry = {
            "tick": c.cur_tick, "kimg": c.cur_nframes / 1000, "kvideos": c.cur_nvideos / 1000, "iter": c.batch_idx,
            "time_s": c.elapsed_s, "sec_per_tick": seconds, "sec_per_kimg": sec_per_kimg,
            "kimg_per_s": 1 / sec_per_kimg, "tflops_per_gpu": flops / 1e12, "mem_gb": peak_memory_gb(self.device),
            "augment_p": float(pipe.p) if pipe is not None else 0.0, **values,
        }
        if self.peak:
            entry["mfu"] = flops / self.peak
        self.log.print(status_line(entry, cuda=self.device.type == "cuda"))
        self.log.record(entry, c.cur_nframes / 1000)
        self.last_tick = entry

    def _maintenance(self, done: bool) -> None:
        c, t, o = self.counters, self.train, self.opts

        def due(last: int, kimg: float) -> bool:
            return done or c.cur_nframes - last >= kimg * 1000

        export = self.save_snapshot() if due(c.last_snap_nframes, t.snap_kimg) else None
        sample_kimg = o.sample_kimg if o.sample_kimg is not None else t.snap_kimg
        if sample_kimg > 0 and due(c.last_sample_nframes, sample_kimg):
            c.last_sample_nframes = c.cur_nframes
            if self.dist.is_main:
                path = self.outdir / f"samples-{snapshot.kimg_tag(c.cur_nframes)}.mp4"
                evaluation.write_samples(self.state.G_ema, path, self.seed, o.sample_videos, o.sample_frames,
                                         self.model.dataset_fps, self.device)
        if self.metrics and due(c.last_metric_nframes, o.metrics_kimg if o.metrics_kimg is not None else t.snap_kimg):
            c.last_metric_nframes = c.cur_nframes
            self.evaluate_metrics(export)

    # ---- snapshots and metrics ----------------------------------------------------------

    def save_snapshot(self) -> Path | None:
        """Training snapshot + G_ema export (rank 0 writes; every rank must call). Returns the export path."""
        c = self.counters
        # Before writing, so the snapshot records itself as the last one; otherwise a resumed run
        # would find a snapshot "due" at its first tick and write a near-duplicate.
        c.last_snap_nframes = c.cur_nframes
        state_dict = self.state.state_dict()  # collective
        error = export = None
        if self.dist.is_main:
            try:
                export = self._write_snapshot(state_dict)
            except OSError as e:  # stylegan_v.fileio.AtomicWriteError names the file and the cause
                error = str(e)
        error = distributed.broadcast_object(error)
        if error is not None:
            latest = snapshot.find_latest(self.outdir)
            keep = f"the last good snapshot {latest} is intact" if latest else "no earlier snapshot exists"
            raise TrainingStopped(f"{error}. Training stopped at kimg {c.cur_nframes / 1000:.1f}; {keep}. "
                                  "Free disk space or fix the folder's permissions, then continue with "
                                  "--resume latest.")
        return export

    def _write_snapshot(self, state_dict: dict) -> Path:
        nframes = self.counters.cur_nframes
        provenance = {"trainer": "stylegan-v-comfy training.train", "run": str(self.outdir.resolve()),
                      "preset": self.train.name, "kimg": nframes / 1000, "data": str(self.opts.data)}
        if self.opts.init:
            provenance["init_from"] = str(self.opts.init)
        run = {"train": self.train.to_dict(), "seed": self.seed, "data": str(self.opts.data)}
        path = snapshot.save_training_state(self.outdir / snapshot.state_name(nframes), state_dict, run=run,
                                            model_config=self.model, provenance=provenance)
        export = snapshot.export_generator(self.outdir / snapshot.export_name(nframes), self.state.G_ema, self.model,
                                           provenance)
        removed = snapshot.prune_states(self.outdir, self.opts.keep)
        self.log.print(f"saved {path.name} and {export.name}" + (f" (removed {len(removed)} older)" if removed else ""))
        return export

    def evaluate_metrics(self, export: Path | None) -> dict:
        """Run the metrics on G_ema (every rank calls; metrics may shard work) and track the best FVD."""
        try:
            from training.metrics import MissingMetricsExtra, evaluate
        except ImportError as e:
            self.log.print(f"metrics requested but unavailable ({e}); skipping")
            return {}
        try:
            results = evaluate(self.state.G_ema, self.opts.data, metrics=list(self.metrics), num=self.opts.metrics_num,
                               device=self.device, seed=self.seed, rank=self.dist.rank,
                               world_size=self.dist.world_size)
        except MissingMetricsExtra as e:
            self.metrics = ()  # metrics are optional: say why once and keep training
            self.log.print(f"metrics disabled: {e}")
            return {}
        if not self.dist.is_main:
            return results
        kimg = self.counters.cur_nframes / 1000
        self.log.print(evaluation.summary(results))
        best = evaluation.record_metrics(self.outdir, kimg, export, results, self.state.best)
        if best is not None:
            self.state.best = best
            self.log.print(f"new best {best['metric']} {best['value']:.4g} at kimg {kimg:.1f} -> "
                           f"{snapshot.BEST_EXPORT}")
        return results
