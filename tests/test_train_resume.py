"""Kill a training run with SIGKILL after its first snapshot, resume it with --resume latest."""

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


def test_sigkill_then_resume_latest_continues_from_the_snapshot(video_data, tmp_path):
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
    tensors, state, _ = snapshot.load_training_state(latest)  # a complete file, whatever the kill interrupted
    saved = state["counters"]
    assert saved["batch_idx"] >= 2 and saved["cur_nframes"] == saved["batch_idx"] * 12
    assert saved["last_snap_nframes"] == saved["cur_nframes"]  # the next snapshot is a full --snap away

    torch.set_num_threads(1)
    trainer = Trainer(RunOptions(data=str(video_data), outdir=str(run), resume="latest", kimg=10.0, workers=0,
                                 sample_kimg=0, tensorboard=False, tick=1000.0))
    assert trainer.seed == 7 and trainer.train.name == "tiny32"
    assert trainer.counters.batch_idx == saved["batch_idx"]
    for name, net in (("G", trainer.G), ("D", trainer.D), ("G_ema", trainer.G_ema)):
        for key, value in net.state_dict().items():
            assert torch.equal(value, tensors[f"{name}.{key}"]), f"{name}.{key}"
    for name, opt in (("G", trainer.G_opt), ("D", trainer.D_opt)):
        for idx, entry in opt.state_dict()["state"].items():
            for key in ("exp_avg", "exp_avg_sq", "step"):
                assert torch.equal(entry[key], tensors[f"{name}_opt.state.{idx}.{key}"]), f"{name} {idx} {key}"
    assert torch.equal(torch.get_rng_state(), tensors["rng.0.torch_cpu"])
    assert float(trainer.augment_pipe.p) == float(tensors["augment.p"])

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
    _, state, _ = snapshot.load_training_state(snapshot.find_latest(run))
    assert f"kimg {state['counters']['cur_nframes'] / 1000:g}" in output.split("stopped on signal")[1]
