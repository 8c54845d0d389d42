"""Data-parallel training with 2 CPU processes (gloo), launched by torchrun as users do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import stylegan_v
from training import snapshot

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def video_data(tmp_path_factory):
    from training.procedural import write_dataset

    root = tmp_path_factory.mktemp("data") / "clips"
    write_dataset(str(root), num_videos=4, num_frames=40, resolution=32, seed=2, progress=False)
    return root


def test_two_gloo_processes_keep_identical_replicas(video_data, tmp_path):
    run = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    # batch 4 videos = 2 per process; 3 iterations, the first with the lazy R1 step.
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "training.train", "--data", str(video_data), "--outdir", str(run), "--preset", "tiny32",
           "--kimg", "0.036", "--tick", "0.012", "--workers", "0", "--sample-kimg", "0", "--no-tensorboard",
           "--device", "cpu", "--verify-replicas"]
    result = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "2 process(es) on cpu" in output and "1 per forward" not in output
    # The trainer all-gathers position-weighted checksums of G, D and G_ema and raises on any difference.
    assert "replicas identical on 2 process(es)" in output, output

    ticks = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [t["iter"] for t in ticks] == [1, 2, 3]  # written once (rank 0 only), not once per rank
    export = snapshot.find_latest(run)
    assert export is not None
    G = stylegan_v.load(run / snapshot.export_name(36))
    assert G.img_resolution == 32
