"""The GPU suite's dry run (toy sizes, CPU): every section runs and reports finite numbers, so the
suite cannot rot between the rare windows in which a GPU runs it for real."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SECTIONS = ("correctness", "render", "training", "smoke", "projection")


def _numbers(record: dict) -> list[float]:
    return [v for v in record.values() if isinstance(v, float)]


def test_dry_run_writes_every_section_with_finite_numbers(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(REPO / "bench" / "gpu_suite.py"), str(tmp_path), "--dry-run"],
                          check=False, capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "gpu_suite.json").read_text())
    assert report["dry_run"] is True and tuple(report["sections"]) == SECTIONS
    for name, section in report["sections"].items():
        # On the CPU a dry run measures every section; only CUDA-only items may be skipped.
        assert section["status"] == "ok", (name, section.get("reason"))
        assert section["seconds"] >= 0 and section["budget_s"] > 0
        ran = [i for i in section.get("items", [section]) if i.get("status", "ok") == "ok"]
        assert ran, name
        for item in ran:
            assert all(math.isfinite(v) for v in _numbers(item)), (name, item)
        for item in section.get("items", []):
            assert item["status"] in ("ok", "skipped") and (item["status"] == "ok" or item["reason"]), item

    checks = report["sections"]["correctness"]["items"]
    assert {i["precision"] for i in checks} == {"float32", "bfloat16", "float16"}
    assert all(0 <= i["excess"] <= 1 for i in checks)
    render = report["sections"]["render"]["items"]
    assert any(i["mode"] == "eager" and i["frames_per_s"] > 0 for i in render)
    assert any(i["mode"].startswith("compiled") and i["status"] == "ok" for i in render)
    graphs = [i for i in render if i["mode"] == "cuda graph"]
    assert graphs and all(i["status"] == "skipped" and "CUDA" in i["reason"] for i in graphs)
    train = [i for i in report["sections"]["training"]["items"] if i["status"] == "ok"]
    assert train and all(i["sec_per_kimg"] > 0 for i in train)
    smoke = report["sections"]["smoke"]
    assert smoke["iterations"] >= 2 and smoke["G_loss_range"] > 0 and smoke["p_min"] != smoke["p_max"]

    projection = report["sections"]["projection"]["items"]
    assert {(i["kind"], i["precision"]) for i in projection if i["status"] == "ok"} == \
        {(k, p) for k in ("image", "video") for p in ("float32", "bfloat16")}
    assert all(0 < i["min"] <= i["steps_per_s"] <= i["max"] for i in projection if i["status"] == "ok")

    table = (tmp_path / "gpu_suite.md").read_text()
    assert "| section | status |" in table and all(f"## {name}" in table for name in SECTIONS)
