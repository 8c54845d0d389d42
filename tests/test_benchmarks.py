"""The benchmark scripts run end to end on the CPU and print their figures (smallest sizes), and
refuse bad arguments in one line before any work."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_module(*args: str, check: bool = True):
    result = subprocess.run([sys.executable, "-m", *args], check=False, cwd=ROOT, capture_output=True, text=True,
                            timeout=300)
    if not check:
        return result
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_render_benchmark_prints_one_row_per_model_and_batch():
    out = run_module("stylegan_v.benchmark", "--device", "cpu", "--preset", "tiny32,small64", "--batch-sizes", "1,2",
                     "--frames", "2", "--repeats", "1")
    rows = re.findall(r"^\s+(\d+)x\d+\s+([\d.]+)\s+float32\s+(\d+)\s+([\d.]+)\s", out, flags=re.MULTILINE)
    assert [(res, batch) for res, _, batch, _ in rows] == [("32", "1"), ("32", "2"), ("64", "1"), ("64", "2")], out
    assert all(float(gflop) > 0 and float(fps) > 0 for _, gflop, _, fps in rows), out


def test_training_benchmark_prints_one_row_per_precision():
    out = run_module("training.benchmark", "--preset", "tiny32", "--batch", "2", "--iters", "1", "--warmup", "1",
                     "--device", "cpu", "--threads", "1", "--precision", "fp32,bf16")
    assert float(re.search(r"([\d.]+) GFLOP per frame", out).group(1)) > 0, out
    # One vocabulary: the short spellings are read, the library's names are printed.
    rows = re.findall(r"^\s+(\w+)\s+off\s+off\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s", out, flags=re.MULTILINE)
    assert [row[0] for row in rows] == ["float32", "bfloat16"], out
    assert all(float(x) > 0 for row in rows for x in row[1:]), out


def test_render_benchmark_on_cpu_defaults_to_256_only():
    """1024x1024 on a CPU takes many minutes and ~10 GiB a row: it is opt-in there."""
    out = run_module("stylegan_v.benchmark", "--device", "cpu", "--batch-sizes", "1", "--frames", "1",
                     "--repeats", "1")
    models = re.findall(r"^\s+(\d+x\d+)\s+[\d.]+\s+float32\s", out, flags=re.MULTILINE)
    assert models == ["256x256"], out


@pytest.mark.parametrize("args, message", [
    (("stylegan_v.benchmark", "--batch-sizes", "0"), "argument --batch-sizes: '0': must be >= 1, got 0"),
    (("stylegan_v.benchmark", "--batch-sizes", "1,x"), "argument --batch-sizes: 'x': invalid integer value"),
    (("stylegan_v.benchmark", "--precisions", "fp8"), "argument --precisions: 'fp8': precision must be one of"),
    (("stylegan_v.benchmark", "--preset", "tiny32,huge"), "argument --preset: 'huge': unknown preset 'huge'"),
    (("stylegan_v.benchmark", "--frames", "0"), "argument --frames: must be >= 1, got 0"),
    (("stylegan_v.benchmark", "--device", "cuda:4095"), "--device cuda:4095: this machine has"),
    (("training.benchmark", "--preset", "tiny32", "--batch", "0"), "argument --batch: must be >= 1, got 0"),
    (("training.benchmark", "--preset", "tiny32", "--precision", "fp8"), "argument --precision: 'fp8': precision"),
    (("training.benchmark", "--preset", "tiny32", "--iters", "0"), "argument --iters: must be >= 1, got 0"),
    (("training.benchmark", "--preset", "tiny32", "--p", "1.5"), "argument --p: must be in [0, 1], got 1.5"),
    (("training.benchmark", "--preset", "nope"), "argument --preset: unknown preset 'nope'"),
    (("training.benchmark",), "the following arguments are required: --preset"),
    (("stylegan_v.benchmark", "--compare", "chunk=0,nchw"), "argument --compare: 'chunk=0': must be >= 1, got 0"),
    (("training.benchmark", "--preset", "tiny32", "--compare", "float32,fast"),
     "argument --compare: 'fast': unknown configuration"),
    (("training.benchmark", "--preset", "tiny32", "--compare", "float32"), "--compare takes two configurations"),
])
def test_bad_arguments_are_refused_in_one_line_before_any_work(args, message):
    result = run_module(*args, check=False)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0], result.stderr
    assert result.stdout == ""  # no table header: nothing was built or measured


def test_render_benchmark_compares_two_configurations_alternately():
    out = run_module("stylegan_v.benchmark", "--device", "cpu", "--preset", "tiny32", "--batch-sizes", "1,2",
                     "--frames", "2", "--compare", "nchw,channels-last", "--rounds", "2")
    assert "channels-last / nchw frames/s" in out, out
    rows = re.findall(r"^\s+32x32\s+float32\s+(\d+)\s+([\d.]+)\s+\(([\d.]+)-([\d.]+)\)$", out, flags=re.MULTILINE)
    assert [batch for batch, *_ in rows] == ["1", "2"], out
    assert all(float(lo) <= float(median) <= float(hi) and float(lo) > 0 for _, median, lo, hi in rows), out
    refused = run_module("stylegan_v.benchmark", "--compare", "nchw", check=False)
    assert refused.returncode == 2 and "--compare takes two configurations" in refused.stderr


def test_render_comparison_restores_the_threads_it_changes():
    """A threads=N configuration is timed with N threads; the other one, and the caller, keep theirs."""
    import torch

    from stylegan_v import benchmark as B

    G = B._generator("tiny32", torch.device("cpu"))
    before = torch.get_num_threads()
    seen = []
    measure = B.measure

    def spy(*args, **kwargs):
        seen.append((torch.get_num_threads(), args[3]))  # (threads, chunk) while this configuration runs
        return measure(*args, **kwargs)

    B.measure = spy
    try:
        ratios = B.compare(G, ("threads=1", "chunk=1"), batch=1, frames=2, chunk=2, device=torch.device("cpu"),
                           rounds=2)
    finally:
        B.measure = measure
    assert len(ratios) == 2 and all(r > 0 for r in ratios)
    assert seen == [(1, 2), (before, 1)] * 2
    assert torch.get_num_threads() == before


def test_training_benchmark_compares_two_configurations_alternately():
    out = run_module("training.benchmark", "--preset", "tiny32", "--batch", "2", "--iters", "1", "--warmup", "1",
                     "--device", "cpu", "--threads", "1", "--aug", "none", "--compare", "nchw,channels-last",
                     "--rounds", "2")
    assert "channels-last / nchw kimg/s" in out and "of 2 alternated rounds" in out, out
    median, lo, hi = map(float, re.search(r"^\s+([\d.]+)\s+\(([\d.]+)-([\d.]+)\)$", out, flags=re.MULTILINE).groups())
    assert 0 < lo <= median <= hi, out
