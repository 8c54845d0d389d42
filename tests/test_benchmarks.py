"""The benchmark scripts run end to end on the CPU and print their figures (smallest sizes)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str) -> str:
    result = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_render_benchmark_prints_one_row_per_model_and_batch():
    out = run_module("stylegan_v.benchmark", "--device", "cpu", "--preset", "tiny32,small64", "--batch-sizes", "1,2",
                     "--frames", "2", "--repeats", "1")
    rows = re.findall(r"^\s+(\d+)x\d+\s+([\d.]+)\s+float32\s+(\d+)\s+([\d.]+)\s", out, flags=re.M)
    assert [(res, batch) for res, _, batch, _ in rows] == [("32", "1"), ("32", "2"), ("64", "1"), ("64", "2")], out
    assert all(float(gflop) > 0 and float(fps) > 0 for _, gflop, _, fps in rows), out


def test_training_benchmark_prints_one_row_per_precision():
    out = run_module("training.benchmark", "--preset", "tiny32", "--batch", "2", "--iters", "1", "--warmup", "1",
                     "--device", "cpu", "--threads", "1", "--precision", "fp32,bf16")
    assert float(re.search(r"([\d.]+) GFLOP per frame", out).group(1)) > 0, out
    rows = re.findall(r"^\s+(fp32|bf16)\s+off\s+off\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s", out, flags=re.M)
    assert [row[0] for row in rows] == ["fp32", "bf16"], out
    assert all(float(x) > 0 for row in rows for x in row[1:]), out
