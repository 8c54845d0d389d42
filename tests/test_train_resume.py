"""Resume: kill a run with SIGKILL after its first snapshot and continue it with --resume latest; preemption
signals; which options a resumed run may change (training.options.resolve, tested without training)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from training import snapshot
from training.loop import RunOptions, Trainer
from training.options import OptionError, recorded_options, resolve
from training.presets import train_preset

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    from training.procedural import write_dataset

    root = tmp_path_factory.mktemp("data") / "clips"
    write_dataset(str(root), num_videos=4, num_frames=40, resolution=32, seed=1, progress=False)
    return root


def _env() -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _wait_for_first_snapshot(proc: subprocess.Popen, run: Path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while snapshot.find_latest(run) is None:
        if proc.poll() is not None:
            pytest.fail(f"training exited early:\n{proc.stdout.read().decode()}")
        if time.monotonic() > deadline:
            pytest.fail(f"no snapshot within {timeout:g} s")
        time.sleep(0.1)


def test_sigkill_then_resume_latest_continues_from_the_snapshot(video_data, tmp_path, capsys):
    run = tmp_path / "run"
    # 12 frames per iteration: a snapshot every 2 iterations, far fewer than the run asks for.
    cmd = [sys.executable, "-m", "training.train", "--data", str(video_data), "--outdir", str(run),
           "--preset", "tiny32", "--kimg", "10", "--snap", "0.024", "--tick", "0.012", "--workers", "0",
           "--sample-kimg", "0", "--no-tensorboard", "--seed", "7"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for_first_snapshot(proc, run)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL

    latest = snapshot.find_latest(run)
    tensors, state, _, _ = snapshot.load_training_state(latest)  # a complete file, whatever the kill interrupted
    saved = state["counters"]
    assert saved["batch_idx"] >= 2 and saved["cur_nframes"] == saved["batch_idx"] * 12
    assert saved["last_snap_nframes"] == saved["cur_nframes"]  # the next snapshot is a full --snap away

    torch.set_num_threads(1)
    trainer = Trainer(RunOptions(data=str(video_data), outdir=str(run), resume="latest", kimg=10.0, workers=0,
                                 sample_kimg=0, tensorboard=False, tick=1000.0))
    assert trainer.seed == 7 and trainer.train.name == "tiny32"
    assert trainer.counters.batch_idx == saved["batch_idx"]
    s = trainer.state
    for name, net in (("G", s.G), ("D", s.D), ("G_ema", s.G_ema)):
        for key, value in net.state_dict().items():
            assert torch.equal(value, tensors[f"{name}.{key}"]), f"{name}.{key}"
    for name, opt in (("G", s.G_opt), ("D", s.D_opt)):
        for idx, entry in opt.state_dict()["state"].items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(entry[key], tensors[f"{name}_opt.state.{idx}.{key}"]), f"{name} {idx} {key}"
    assert torch.equal(torch.get_rng_state(), tensors["rng.0.torch_cpu"])
    assert float(s.augment_pipe.p) == float(tensors["augment.p"])
    out = capsys.readouterr().out
    assert f"resumed from {latest} at kimg" in out
    assert "changed on resume: --tick: 0.012 -> 1000" in out and "--kimg" not in out  # --kimg 10 as recorded

    counters = trainer.run(max_iterations=2)
    assert counters.batch_idx == saved["batch_idx"] + 2
    assert counters.cur_nframes == saved["cur_nframes"] + 24
    lines = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert lines[-1]["iter"] == counters.batch_idx  # the resumed run appends to the same log
    assert snapshot.find_latest(run).name == snapshot.state_name(counters.cur_nframes)


def test_sigterm_to_the_whole_job_with_data_workers_saves_and_exits_cleanly(video_data, tmp_path):
    """SLURM's preemption and `kill -- -PGID` signal the trainer and its data workers together."""
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "training.train", "--data", str(video_data), "--outdir", str(run),
           "--preset", "tiny32", "--kimg", "10", "--snap", "0.024", "--tick", "0.012", "--workers", "1",
           "--sample-kimg", "0", "--no-tensorboard", "--seed", "7"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True)
    try:
        _wait_for_first_snapshot(proc, run)
        os.killpg(proc.pid, signal.SIGTERM)
        output = proc.communicate(timeout=120)[0].decode()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 0, output
    assert "stopped on signal" in output, output
    state = snapshot.load_training_state(snapshot.find_latest(run)).state
    assert f"kimg {state['counters']['cur_nframes'] / 1000:g}" in output.split("stopped on signal")[1]


def test_a_resumed_run_takes_allowed_changes_and_refuses_the_others(video_data, tmp_path, capsys):
    from training.train import main

    run = tmp_path / "run"
    base = dict(data=str(video_data), outdir=str(run), workers=0, sample_kimg=0, tensorboard=False)
    torch.set_num_threads(1)
    Trainer(RunOptions(train=train_preset("tiny32"), tick=1000.0, **base)).run(max_iterations=1)
    p0 = float(snapshot.load_training_state(snapshot.find_latest(run)).tensors["augment.p"])

    trainer = Trainer(RunOptions(resume="latest", batch=8, aug="fixed", p=0.25, **base))
    assert trainer.train.batch == 8 and trainer.train.augment == "fixed" and trainer.state.ada is None
    assert float(trainer.state.augment_pipe.p) == 0.25 != p0  # a new --p replaces the saved p
    assert trainer.gamma == pytest.approx(0.0002 * 32**2 / 8)  # the automatic R1 weight follows the batch
    out = capsys.readouterr().out
    for note in ("--batch: 4 -> 8", "--aug: ada -> fixed", "--p: 0 -> 0.25"):
        assert f"changed on resume: {note}" in out
    assert trainer.counters.batch_idx == 1

    with pytest.raises(OptionError, match="--sampling uniform: this run was started with random"):
        Trainer(RunOptions(resume="latest", sampling="uniform", **base))
    args = ["--data", str(video_data), "--outdir", str(run), "--resume", "latest", "--max-dist", "8"]
    assert main(args) == 1
    assert "error: --max-dist 8: this run was started with 32" in capsys.readouterr().err


@pytest.mark.parametrize("size", ["half", "empty"])
def test_resume_skips_a_torn_newest_state_and_names_it(video_data, tmp_path, size):
    run = tmp_path / "run"
    base = dict(data=str(video_data), outdir=str(run), workers=0, sample_kimg=0, tensorboard=False)
    torch.set_num_threads(1)
    Trainer(RunOptions(train=train_preset("tiny32"), tick=1000.0, **base)).run(max_iterations=1)
    good = snapshot.find_latest(run)
    torn = run / snapshot.state_name(10**6)  # newer than `good`: what a kill mid-write would leave
    data = good.read_bytes()
    torn.write_bytes(data[:len(data) // 2] if size == "half" else b"")
    assert snapshot.find_latest(run) == torn
    for mode in ("latest", "auto"):
        with pytest.warns(UserWarning, match=f"--resume {mode}: skipping {torn.name}"):
            trainer = Trainer(RunOptions(resume=mode, **base))
        assert trainer.counters.batch_idx == 1  # continued from `good`

    good.write_bytes(b"")  # nothing left that reads: refused, never a silent fresh start
    with pytest.warns(UserWarning), pytest.raises(snapshot.TrainingStateError, match="none of the 2"):
        Trainer(RunOptions(resume="auto", **base))


def test_a_run_folder_heals_itself_on_resume(video_data, tmp_path, capsys):
    """A kill mid-write leaves the atomic writer's temporary files, and a kill between a state and
    its export leaves the export missing: resuming removes the first and re-exports the second."""
    import stylegan_v

    run = tmp_path / "run"
    base = dict(data=str(video_data), outdir=str(run), workers=0, sample_kimg=0, tensorboard=False)
    torch.set_num_threads(1)
    Trainer(RunOptions(train=train_preset("tiny32"), tick=1000.0, **base)).run(max_iterations=1)
    state = snapshot.find_latest(run)
    export = run / state.name.replace(snapshot.STATE_PREFIX, snapshot.EXPORT_PREFIX)
    reference = stylegan_v.load(export).state_dict()
    export.unlink()
    stale = [run / f".{state.name}.k3x9_q2a.tmp", run / ".samples-000000.004.mp4.abcdefgh.mp4"]
    foreign = [run / ".notes.txt.abcdefgh.tmp", run / "my-notes.txt"]  # not the trainer's: kept
    for path in stale + foreign:
        path.write_bytes(b"partial")
        os.utime(path, (time.time() - 60, time.time() - 60))

    Trainer(RunOptions(resume="latest", **base))
    out = capsys.readouterr().out
    assert "removed 2 temporary file(s)" in out and f"re-exported {export.name}" in out
    assert not any(p.exists() for p in stale) and all(p.exists() for p in foreign)
    again = stylegan_v.load(export).state_dict()
    assert all(torch.equal(again[k], v) for k, v in reference.items())  # the same G_ema weights


# ---- option resolution on resume (pure) --------------------------------------------------------

def _recorded(init: str | None = None) -> RunOptions:
    train = train_preset("tiny32")
    return recorded_options(train, train.model_config(), seed=7, data="data/a", init=init)


def test_resume_without_options_continues_the_recorded_run():
    recorded = _recorded()
    resolved = resolve(RunOptions(data="data/a", outdir="run", resume="latest"), recorded)
    assert resolved.train == recorded.train and resolved.model == recorded.model
    assert resolved.options.seed == 7 and resolved.notes == () and resolved.changed == frozenset()
    # Restating the recorded values changes nothing either.
    same = RunOptions(data="data/a", outdir="run", train=train_preset("tiny32"), seed=7, batch=4, sampling="random",
                      kimg=recorded.train.total_kimg, mirror=True)
    assert resolve(same, recorded).notes == () and resolve(same, recorded).train == recorded.train


def test_resume_keeps_and_reports_the_options_that_may_change():
    recorded = _recorded()
    opts = RunOptions(data="data/b", outdir="run", batch=8, gamma=0.5, aug="fixed", p=0.2, target=0.7,
                      mirror=False, kimg=20.0, snap=2.4, tick=0.24, dataset_fps=30.0)
    resolved = resolve(opts, recorded)
    t = resolved.train
    assert (t.batch, t.r1_gamma, t.augment, t.augment_p, t.ada_target, t.mirror) == (8, 0.5, "fixed", 0.2, 0.7, False)
    assert (t.total_kimg, t.snap_kimg, t.tick_kimg) == (20.0, 2.4, 0.24)
    assert (t.name, t.sampling, t.max_dist, t.g_lr, t.ema_rampup) == ("tiny32", "random", 32, 0.0025, 0.05)
    assert resolved.model.dataset_fps == 30.0 and resolved.model.generator == recorded.model.generator
    assert resolved.options.data == "data/b" and resolved.options.seed == 7
    assert set(resolved.notes) == {
        "--data: data/a -> data/b", "--batch: 4 -> 8", "--gamma: none -> 0.5", "--aug: ada -> fixed",
        "--p: 0 -> 0.2", "--target: 0.6 -> 0.7", "--mirror: on -> off", "--kimg: 12 -> 20", "--snap: 1.2 -> 2.4",
        "--tick: 0.12 -> 0.24", f"--dataset-fps: {recorded.model.dataset_fps:g} -> 30"}
    assert resolved.changed == {"data", "batch", "gamma", "aug", "p", "target", "mirror", "kimg", "snap", "tick",
                                "dataset_fps"}


@pytest.mark.parametrize("change, flag", [
    ({"sampling": "uniform"}, "--sampling uniform"), ({"sampling": "consecutive"}, "--sampling consecutive"),
    ({"max_dist": 16}, "--max-dist 16"), ({"seed": 3}, "--seed 3"), ({"train": train_preset("small64")},
                                                                      "--preset small64"),
])
def test_resume_refuses_options_that_change_the_networks_or_the_data_layout(change, flag):
    with pytest.raises(OptionError, match=f"^{flag}: this run was started with .* cannot change on resume"):
        resolve(RunOptions(data="data/a", outdir="run", **change), _recorded())


def test_resume_refuses_another_model_and_another_init():
    import dataclasses

    recorded = _recorded(init="a.pkl")
    model = dataclasses.replace(recorded.model, name="other")
    with pytest.raises(OptionError, match="^model other: this run was started with tiny32"):
        resolve(RunOptions(data="data/a", outdir="run", model=model), recorded)
    with pytest.raises(OptionError, match="^--init b.pkl: this run was started with a.pkl"):
        resolve(RunOptions(data="data/a", outdir="run", init="b.pkl"), recorded)
    # The same --init (a requeued `--resume auto --init ...` job) is fine; a state that did not record one takes it.
    assert resolve(RunOptions(data="data/a", outdir="run", init="a.pkl"), recorded).notes == ()
    assert resolve(RunOptions(data="data/a", outdir="run", init="a.pkl"), _recorded()).notes == (
        "--init: none -> a.pkl",)


def test_a_fresh_run_applies_the_overrides_to_its_preset():
    import dataclasses

    opts = RunOptions(data="d", outdir="run", train=train_preset("tiny32"), batch=8, sampling="uniform", kimg=3.0)
    resolved = resolve(opts)
    assert (resolved.train.batch, resolved.train.sampling, resolved.train.total_kimg) == (8, "uniform", 3.0)
    assert resolved.model.discriminator.sampling_type == "uniform"  # a uniform run needs a uniform D
    assert resolved.options.seed == 0 and resolved.options.batch == 8 and resolved.notes == ()
    with pytest.raises(ValueError, match="a training preset is needed"):
        resolve(RunOptions(data="d", outdir="run"))

    # --init: the checkpoint's architecture and transfer-learning settings; its D must suit the sampling.
    init_model = dataclasses.replace(train_preset("small64").model_config(), dataset_fps=24.0)
    resolved = resolve(dataclasses.replace(opts, sampling=None, init="x.pkl"), init_model=init_model)
    assert resolved.model == init_model and resolved.train.ada_kimg == 100.0 and resolved.train.ema_rampup is None
    assert resolved.warnings == ("--init x.pkl is 64x64; using its architecture instead of the preset's 32",)
    with pytest.raises(OptionError, match="pass --sampling random"):
        resolve(dataclasses.replace(opts, init="x.pkl"), init_model=init_model)
