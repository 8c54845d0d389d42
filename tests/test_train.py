"""Trainer: a few real iterations, R1 correctness, augmentation inside the D pass, safe snapshots."""

from __future__ import annotations

import dataclasses
import json
import math
import re

import numpy as np
import pytest
import torch

import stylegan_v
from training import loss, snapshot
from training.flops import iteration_cost
from training.loop import RunOptions, Trainer, TrainingStopped
from training.options import resolve
from training.presets import TRAIN_PRESETS, train_preset


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    from training.procedural import write_dataset

    root = tmp_path_factory.mktemp("data") / "clips"
    write_dataset(str(root), num_videos=4, num_frames=40, resolution=32, seed=0, progress=False)
    return root


@pytest.fixture
def one_thread():
    # 2 shared cores: intra-op threads only spin against each other here.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _options(data, outdir, **kw) -> RunOptions:
    base = dict(data=str(data), outdir=str(outdir), train=train_preset("tiny32"), workers=0, sample_kimg=0,
                tensorboard=False, tick=1000.0)
    base.update(kw)
    return RunOptions(**base)


def test_tiny_run_trains_and_exports_a_loadable_model(video_data, tmp_path, one_thread):
    run = tmp_path / "run"
    trainer = Trainer(_options(video_data, run, sample_kimg=1000.0, sample_videos=2, sample_frames=4))
    state = trainer.state
    # G trains on the original's float32 motion path; G_ema (samples, metrics, exports) keeps float64.
    assert state.G.synthesis.motion_encoder.compute_dtype == torch.float32
    assert state.G_ema.synthesis.motion_encoder.compute_dtype == torch.float64
    G0 = {k: v.clone() for k, v in state.G.state_dict().items()}
    D0 = {k: v.clone() for k, v in state.D.state_dict().items()}
    counters = trainer.run(max_iterations=2)  # iteration 0 includes the lazy R1 step

    assert counters.batch_idx == 2 and counters.cur_nframes == 2 * 4 * 3 and counters.cur_nvideos == 8
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    for key in ("Loss/G/loss", "Loss/D/loss", "Loss/r1_penalty", "sec_per_kimg", "kimg_per_s"):
        assert math.isfinite(stats[-1][key]), key
    assert any(not torch.equal(G0[k], v) for k, v in state.G.state_dict().items())
    assert any(not torch.equal(D0[k], v) for k, v in state.D.state_dict().items())

    export = run / snapshot.export_name(counters.cur_nframes)
    G = stylegan_v.load(export)
    assert G.model_config == trainer.model and G.model_config.dataset_fps == trainer.model.dataset_fps
    assert json.loads(G.checkpoint_metadata["provenance"])["preset"] == "tiny32"
    for name, net in (("G_ema", state.G_ema), ("G", state.G), ("D", state.D)):
        loaded = stylegan_v.load(run / snapshot.state_name(counters.cur_nframes), net=name)
        for key, value in net.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value.cpu()), (name, key)
    frames = stylegan_v.render.render(G, stylegan_v.render.sample_content(G, 0, 1),
                                      stylegan_v.render.MotionSeed(0, 1), torch.arange(3.0))
    assert frames.shape == (1, 3, 3, 32, 32) and torch.isfinite(frames).all()
    assert (run / f"samples-{snapshot.kimg_tag(counters.cur_nframes)}.mp4").stat().st_size > 0


def test_ema_without_rampup_follows_the_half_life(video_data, tmp_path, one_thread):
    preset = dataclasses.replace(train_preset("tiny32"), ema_kimg=0.01, ema_rampup=None)
    trainer = Trainer(_options(video_data, tmp_path / "run", train=preset))
    trainer.counters.cur_nvideos = 100
    for p in trainer.state.G.parameters():
        p.data.fill_(1.0)
    for p in trainer.state.G_ema.parameters():
        p.data.fill_(0.0)
    trainer.update_ema()
    beta = 0.5 ** (4 / 10.0)  # batch 4 videos, half-life 10 videos
    assert torch.allclose(next(trainer.state.G_ema.parameters()), torch.tensor(1 - beta))


def test_optimizer_settings_match_the_original(video_data, tmp_path, one_thread):
    trainer = Trainer(_options(video_data, tmp_path / "run"))
    g, d = trainer.state.G_opt.param_groups[0], trainer.state.D_opt.param_groups[0]
    # Lazy regularisation: G lr 0.0025 * 4/5, beta2 0.99^(4/5); D lr 0.0025 * 16/17, beta2 0.99^(16/17).
    assert g["lr"] == pytest.approx(0.002) and g["betas"][1] == pytest.approx(0.991992, abs=1e-6)
    assert d["lr"] == pytest.approx(0.0023529, abs=1e-7) and d["betas"][1] == pytest.approx(0.990585, abs=1e-6)
    assert g["betas"][0] == 0.0 and d["betas"][0] == 0.0
    assert trainer.gamma == pytest.approx(0.0002 * 32**2 / 4)
    assert TRAIN_PRESETS["ffs256"].gamma(256) == pytest.approx(0.2048)
    assert TRAIN_PRESETS["mead1024"].gamma(1024) == pytest.approx(3.2768)


def test_r1_penalty_matches_the_closed_form():
    # D_b = a * sum_{f,pixels} x^2 + w . x  ->  dD_b/dx = 2 a x + w, per frame.
    torch.manual_seed(0)
    B, F_, C, H, W = 2, 3, 3, 4, 4
    a = torch.tensor(0.7, requires_grad=True)
    w = torch.randn(C, H, W)

    def D(frames, c, t):
        per_frame = a * frames.square().sum([1, 2, 3]) + (frames * w).sum([1, 2, 3])
        return per_frame.reshape(-1, F_).sum(1)

    x = torch.randn(B * F_, C, H, W)
    t = torch.arange(F_).repeat(B, 1)
    penalty, _ = loss.r1_penalty(D, x, None, t)
    expected = (2 * a.detach() * x + w).square().sum([1, 2, 3]).reshape(B, F_).mean(1)
    assert torch.allclose(penalty, expected, rtol=1e-5)

    # Its gradient w.r.t. D's parameter (the double backward) against the analytic derivative.
    gamma, interval = 0.5, 16
    value, _ = loss.r1_loss(D, x, None, t, gamma, interval)
    (grad_a,) = torch.autograd.grad(value, a)
    g = 2 * a.detach() * x + w
    d_penalty = (2 * g * 2 * x).sum([1, 2, 3]).reshape(B, F_).mean(1)
    assert grad_a.item() == pytest.approx((d_penalty.mean() * gamma / 2 * interval).item(), rel=1e-5)


def test_r1_double_backward_matches_finite_differences():
    # A smooth float64 stand-in with D's structure (per-frame convs, clip-level head), so
    # central differences are exact to ~1e-8; the real D has lrelu/clamp kinks and
    # float32 internals, where differences in the parameters are not meaningful.
    torch.manual_seed(0)
    B, F_ = 2, 3
    conv = torch.nn.Conv2d(3, 4, 3, padding=1).double()
    head = torch.nn.Linear(F_ * 4 * 8 * 8, 1).double()

    def D(frames, c, t):
        h = torch.nn.functional.softplus(conv(frames))
        h = torch.nn.functional.avg_pool2d(h, 2)
        return head(h.reshape(B, -1)).squeeze(1) * (1 + t.double().mean(1) * 0.1)

    x = torch.randn(B * F_, 3, 16, 16, dtype=torch.float64)
    t = torch.tensor([[0, 1, 3], [2, 4, 8]])

    def value() -> torch.Tensor:
        return loss.r1_loss(D, x, None, t, gamma=0.3, interval=16)[0]

    grads = torch.autograd.grad(value(), [conv.weight, head.weight])
    for param, grad in zip([conv.weight, head.weight], grads):
        direction = torch.randn_like(param)
        eps = 1e-6
        original = param.data.clone()
        param.data = original + eps * direction
        plus = value().item()
        param.data = original - eps * direction
        minus = value().item()
        param.data = original
        assert (grad * direction).sum().item() == pytest.approx((plus - minus) / (2 * eps), rel=1e-5)


def test_r1_through_the_real_discriminator_is_finite_and_reaches_every_frame(one_thread):
    torch.manual_seed(0)
    D = stylegan_v.Discriminator(stylegan_v.preset("tiny32").discriminator)
    x = torch.randn(4 * 3, 3, 32, 32)
    penalty, logits = loss.r1_penalty(D, x, torch.zeros(4, 0), torch.tensor([[0, 1, 3]] * 4))
    assert penalty.shape == (4,) and logits.shape == (4,)
    assert torch.isfinite(penalty).all() and (penalty > 0).all()
    (grad,) = torch.autograd.grad(penalty.sum(), D.b32.conv0.weight)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def test_augmentation_is_shared_by_the_frames_of_a_clip_inside_the_d_pass():
    from training.augment import AugmentPipe

    torch.manual_seed(0)
    B, F_ = 4, 3
    one = torch.rand(B, 1, 3, 16, 16) * 2 - 1
    frames = one.expand(B, F_, 3, 16, 16).reshape(B * F_, 3, 16, 16)  # every clip: one frame repeated
    seen = {}

    def D(x, c, t):
        seen["x"] = x
        return x.mean([1, 2, 3]).reshape(B, F_).mean(1)

    pipe = AugmentPipe(p=1.0)
    loss.run_D(D, frames, None, torch.zeros(B, F_), augment=pipe)
    out = seen["x"].reshape(B, F_, 3, 16, 16)
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    assert not torch.allclose(out[:, 0], one[:, 0])  # p=1 really augmented


def test_flop_model_matches_the_reference_figures():
    # Reference figures: G 30.48 and D 29.22 GFLOP per 256^2 frame (incl. ~1% FIR we do not count).
    cost = iteration_cost(stylegan_v.preset("ffs256"), batch=64)
    assert cost.g_frame / 1e9 == pytest.approx(30.48, rel=0.02)
    assert cost.d_frame / 1e9 == pytest.approx(29.22, rel=0.02)
    assert cost.per_iteration / 1e12 == pytest.approx(70.5, rel=0.02)


def test_failed_snapshot_write_keeps_the_last_good_one(video_data, tmp_path, one_thread, monkeypatch):
    run = tmp_path / "run"
    trainer = Trainer(_options(video_data, run))
    trainer.run(max_iterations=1)
    good = snapshot.find_latest(run)
    before = good.read_bytes()

    import safetensors.torch

    def disk_full(tensors, filename, metadata=None):
        with open(filename, "wb") as f:
            f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(safetensors.torch, "save_file", disk_full)
    trainer.train_step(trainer._loader())
    with pytest.raises(TrainingStopped, match="No space left on device.*last good snapshot .* is intact"):
        trainer.save_snapshot()
    assert snapshot.find_latest(run) == good and good.read_bytes() == before
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]
    monkeypatch.undo()
    assert snapshot.load_training_state(good).state["counters"]["batch_idx"] == 1
    stylegan_v.load(good, net="D")


def test_unwritable_output_folder_is_named(video_data, tmp_path, monkeypatch):
    import training.loop as loop_module

    def refuse(self, *a, **k):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(loop_module.Path, "write_bytes", refuse)
    with pytest.raises(TrainingStopped, match="not writable: Permission denied"):
        Trainer(_options(video_data, tmp_path / "ro"))


def test_existing_run_needs_resume(video_data, tmp_path, one_thread):
    run = tmp_path / "run"
    Trainer(_options(video_data, run)).run(max_iterations=1)
    with pytest.raises(ValueError, match="--resume latest"):
        Trainer(_options(video_data, run))
    with pytest.raises(FileNotFoundError, match="no training snapshot"):
        Trainer(_options(video_data, tmp_path / "empty", resume="latest"))


def test_fake_timestamps_follow_the_sparse_sampling(video_data, tmp_path, one_thread):
    trainer = Trainer(_options(video_data, tmp_path / "run"))
    _, _, t = trainer._fake_inputs()
    t = t.numpy()
    gaps = np.diff(t, axis=1)
    assert t.dtype == np.float64 and (t >= 0).all() and (t <= 39).all()
    assert np.allclose(gaps, np.round(gaps)) and (gaps >= 1).all()
    spans = t[:, -1] - t[:, 0]
    assert set(np.round(spans).astype(int)) <= {2, 4, 8, 16, 32}


def test_metrics_hook_keeps_the_best_snapshot_by_fvd(video_data, tmp_path, one_thread, monkeypatch):
    import training.metrics

    scores = iter([50.0, 80.0, 20.0])
    calls = []

    def fake_evaluate(G, real_data_path, metrics, **kwargs):
        calls.append((real_data_path, list(metrics), kwargs["num"]))
        return {"fvd64_16f": next(scores), "details": {"fvd64_16f": {"num_fake": 64}}}

    monkeypatch.setattr(training.metrics, "evaluate", fake_evaluate)
    run = tmp_path / "run"
    trainer = Trainer(_options(video_data, run, snap=0.012, tick=0.012, metrics=("fvd2048_16f",), metrics_num=64,
                               keep=0))
    trainer.run(max_iterations=3)  # a snapshot and an evaluation after every iteration
    assert calls == [(str(video_data), ["fvd2048_16f"], 64)] * 3
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["results"]["fvd64_16f"] for h in history] == [50.0, 80.0, 20.0]
    best = json.loads((run / "best.json").read_text())
    assert best["value"] == 20.0 and best["snapshot"] == snapshot.export_name(36)
    assert (run / snapshot.BEST_EXPORT).read_bytes() == (run / snapshot.export_name(36)).read_bytes()
    assert trainer.state.best == best


def test_init_from_an_original_snapshot_fine_tunes_all_three_networks(video_data, tmp_path, one_thread,
                                                                       official_pkl, monkeypatch):
    import stylegan_v.checkpoint

    resolve = stylegan_v.checkpoint.resolve_checkpoint
    opened = []
    monkeypatch.setattr(stylegan_v.checkpoint, "resolve_checkpoint", 
                        lambda path, **kw: opened.append(path) or resolve(path, **kw))
    trainer = Trainer(_options(video_data, tmp_path / "run", init=str(official_pkl)))
    assert opened == [str(official_pkl)]  # the checkpoint is read once for its config and all three networks
    monkeypatch.undo()
    for name, net in (("G", trainer.state.G), ("G_ema", trainer.state.G_ema), ("D", trainer.state.D)):
        reference = stylegan_v.load(official_pkl, net=name)
        for key, value in reference.state_dict().items():
            assert torch.equal(net.state_dict()[key], value), (name, key)
    assert trainer.model.generator == stylegan_v.load(official_pkl).model_config.generator
    assert trainer.train.ada_kimg == 100.0 and trainer.train.ema_rampup is None  # transfer-learning settings
    counters = trainer.run(max_iterations=1)
    G = stylegan_v.load(tmp_path / "run" / snapshot.export_name(counters.cur_nframes))
    assert json.loads(G.checkpoint_metadata["provenance"])["init_from"] == str(official_pkl)


def test_resume_auto_starts_fresh_then_continues(video_data, tmp_path, one_thread):
    run = tmp_path / "run"
    first = Trainer(_options(video_data, run, resume="auto")).run(max_iterations=1)
    assert first.batch_idx == 1
    second = Trainer(_options(video_data, run, resume="auto"))
    assert second.counters.batch_idx == 1


def test_sigterm_saves_a_snapshot_and_stops_at_the_next_tick(video_data, tmp_path, one_thread):
    import os
    import signal

    run = tmp_path / "run"
    trainer = Trainer(_options(video_data, run, tick=0.012, snap=1000.0))
    original_step = trainer.train_step

    def step_then_signal(loader):
        original_step(loader)
        if trainer.counters.batch_idx == 2:
            os.kill(os.getpid(), signal.SIGTERM)  # as a scheduler preempting the job would

    trainer.train_step = step_then_signal
    before = signal.getsignal(signal.SIGTERM)
    counters = trainer.run(max_iterations=10)
    assert trainer.stopped_by_signal and counters.batch_idx == 2
    assert snapshot.find_latest(run).name == snapshot.state_name(24)
    assert signal.getsignal(signal.SIGTERM) == before  # handlers restored


def test_command_line_maps_onto_the_run_options():
    from training.train import build_parser, options_from_args

    args = build_parser().parse_args(["--data", "D", "--outdir", "R", "--preset", "ffs256", "--kimg", "100",
                                      "--snap", "20", "--batch", "32", "--gamma", "1.5", "--no-mirror",
                                      "--aug", "fixed", "--p", "0.3", "--resume", "auto", "--metrics",
                                      "fvd2048_16f,fid50k_full", "--no-compile"])
    opts = options_from_args(args)
    assert (opts.kimg, opts.snap, opts.resume, opts.compile) == (100.0, 20.0, "auto", False)
    assert opts.metrics == ("fvd2048_16f", "fid50k_full")
    assert opts.seed is None and opts.workers is None and opts.tensorboard and opts.channels_last is None
    t = resolve(opts).train
    assert (t.batch, t.r1_gamma, t.mirror, t.augment, t.augment_p) == (32, 1.5, False, "fixed", 0.3)
    assert (t.total_kimg, t.snap_kimg, t.tick_kimg) == (100.0, 20.0, TRAIN_PRESETS["ffs256"].tick_kimg)
    assert t.g_lr == TRAIN_PRESETS["ffs256"].g_lr and t.model == "ffs256"
    assert resolve(opts).options.seed == 0
    with pytest.raises(ValueError, match="--preset is required"):
        options_from_args(build_parser().parse_args(["--data", "D", "--outdir", "R"]))
    assert options_from_args(build_parser().parse_args(["--data", "D", "--outdir", "R", "--resume", "latest",
                                                        "--no-tensorboard", "--workers", "0"])) == \
        RunOptions(data="D", outdir="R", resume="latest", tensorboard=False, workers=0)
    assert _roundtrips(TRAIN_PRESETS["mead1024"])


def test_every_run_option_but_the_programmatic_ones_has_a_flag():
    from training.options import OPTIONS, flag_of
    from training.train import build_parser

    flags = {flag for action in build_parser()._actions for flag in action.option_strings}
    for f in OPTIONS:
        if f.name in ("model", "log_every_iter"):
            assert flag_of(f) == ""
        else:
            assert flag_of(f) in flags, f.name


@pytest.mark.parametrize("spelling, dtype", [("fp32", torch.float32), ("float32", torch.float32),
                                             ("bf16", torch.bfloat16), ("bfloat16", torch.bfloat16),
                                             ("fp16", torch.float16), ("half", torch.float16)])
def test_precision_takes_the_library_names_and_the_old_spellings(spelling, dtype):
    from training.setup import runtime
    from training.train import build_parser

    args = build_parser().parse_args(["--data", "D", "--outdir", "R", "--precision", spelling])
    assert runtime(RunOptions(data="D", outdir="R", precision=args.precision), torch.device("cpu")).dtype == dtype


def test_precision_refuses_unknown_names_and_loss_scaling_without_float16(capsys):
    from training.setup import runtime
    from training.train import build_parser

    with pytest.raises(SystemExit):
        build_parser().parse_args(["--data", "D", "--outdir", "R", "--precision", "fp8"])
    assert "precision must be one of float32, float16, bfloat16; got 'fp8'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="--loss-scaling applies to --precision fp16"):
        runtime(RunOptions(data="D", outdir="R", precision="bf16", loss_scaling=True), torch.device("cpu"))
    cpu = runtime(RunOptions(data="D", outdir="R"), torch.device("cpu"))
    assert (cpu.dtype, cpu.compile, cpu.channels_last, cpu.precision) == (torch.float32, False, False, "float32")


def _roundtrips(preset) -> bool:
    from training.presets import TrainPreset

    return TrainPreset.from_dict(json.loads(json.dumps(preset.to_dict()))) == preset


def test_atomic_writes_respect_the_umask_and_name_the_file_they_could_not_write(tmp_path):
    import os
    import stat
    from pathlib import Path

    from stylegan_v.fileio import AtomicWriteError, atomic_output

    for umask, mode in ((0o027, 0o640), (0o002, 0o664)):
        previous = os.umask(umask)
        try:
            with atomic_output(tmp_path / f"{umask:o}.bin") as tmp:
                Path(tmp).write_bytes(b"x")
        finally:
            os.umask(previous)
        assert stat.S_IMODE((tmp_path / f"{umask:o}.bin").stat().st_mode) == mode

    target = tmp_path / "kept.bin"
    target.write_bytes(b"old")
    with pytest.raises(AtomicWriteError, match=f"could not write best export {target}: No space left") as info:
        with atomic_output(target, what="best export") as tmp:
            Path(tmp).write_bytes(b"partial" * 300)
            raise OSError(28, "No space left on device")
    assert isinstance(info.value, OSError) and info.value.errno == 28
    # The space it needs: more than what was written before the disk filled, and what is free.
    assert "needs more than the 2.1 KB written before the disk filled" in str(info.value)
    assert re.search(r"; [0-9.]+ [KMG]?B free there\)$", str(info.value))
    with pytest.raises(ValueError, match="bad input"):  # not a filesystem error: passes through as it is
        with atomic_output(target) as tmp:
            raise ValueError("bad input")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["2.bin", "27.bin", "kept.bin"]  # no temporary files


def test_unreadable_training_states_are_checkpoint_errors(tmp_path):
    from safetensors.torch import save_file

    from stylegan_v.errors import CheckpointError

    export = tmp_path / "network-snapshot-000001.safetensors"
    save_file({"x": torch.zeros(1)}, str(export), metadata={"format": "stylegan-v"})
    with pytest.raises(CheckpointError, match="is not a training snapshot .* use --init"):
        snapshot.load_training_state(export)
    torn = tmp_path / snapshot.state_name(1000)
    torn.write_bytes(b"\x00" * 10)
    with pytest.raises(snapshot.TrainingStateError, match=f"cannot read training snapshot {torn}"):
        snapshot.load_training_state(torn)
    # A header that claims more tensors than any state holds is refused before safetensors parses it.
    header = json.dumps({f"t{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(70000)})
    crowded = tmp_path / snapshot.state_name(2000)
    crowded.write_bytes(len(header).to_bytes(8, "little") + header.encode())
    with pytest.raises(snapshot.TrainingStateError, match="lists 70000 tensors, more than"):
        snapshot.load_training_state(crowded)
    directory = tmp_path / snapshot.state_name(3000)
    directory.mkdir()
    with pytest.raises(snapshot.TrainingStateError, match="is a directory"):
        snapshot.load_training_state(directory)


@pytest.mark.parametrize("cores,asked,expected", [
    (2, (None, None), (1, 1)),    # the shared 2-core machine: 1 thread + 1 worker was the fastest measured
    (1, (None, None), (1, 0)),    # one core: load in the training process
    (16, (None, None), (13, 3)),  # at most 3 workers; the rest compute
    (8, (2, None), (2, 3)),       # what the user asks for wins
    (8, (None, 0), (8, 0)),
])
def test_threads_and_workers_fit_the_cores(cores, asked, expected):
    from training.setup import cpu_budget

    threads, workers = cpu_budget(cores, *asked)
    assert (threads, workers) == expected
    if asked == (None, None):
        assert threads + workers <= max(cores, 1 + workers)  # never more busy processes than cores

