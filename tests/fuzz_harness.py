"""Run loader code in a child interpreter and measure it: exit status, wall time and peak memory.

Hostile files must be refused without taking the process down, so they are loaded in a child:
a crash signal, a hang or a memory blow-up shows up here instead of killing the test run.
Peak memory is the child's own `ru_maxrss` (from `os.wait4`), compared with a child that only
imports the library.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
IMPORTS = "import stylegan_v.checkpoint, stylegan_v.legacy\n"


@dataclass(frozen=True)
class ChildRun:
    returncode: int  # negative: killed by that signal
    timed_out: bool
    seconds: float
    maxrss_mb: float
    stdout: str
    stderr: str

    def results(self) -> list[dict]:
        return [json.loads(line) for line in self.stdout.splitlines() if line.startswith("{")]


# Linux records the pre-exec memory of a forked child in its peak, so a child forked straight from a large
# pytest process would report pytest's size. A small wrapper interpreter forks the real child instead, reaps
# it with wait4 (which returns that child's own peak) and writes the status and peak to a report file.
_WRAPPER = """
import json, os, subprocess, sys
child = subprocess.Popen(sys.argv[2:])
_, status, usage = os.wait4(child.pid, 0)
child.returncode = os.waitstatus_to_exitcode(status)
with open(sys.argv[1], "w") as f:
    json.dump({"returncode": child.returncode, "maxrss_kb": usage.ru_maxrss}, f)
"""


def run_child(code: str, timeout: float) -> ChildRun:
    """Run `code` (after the library imports) in a fresh interpreter, with the repository on its path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp, open(Path(tmp) / "out", "w+") as out, \
            open(Path(tmp) / "err", "w+") as err:
        report = Path(tmp) / "report.json"
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", _WRAPPER, str(report), sys.executable, "-c", IMPORTS + code],
                                cwd=ROOT, env=env, stdout=out, stderr=err, start_new_session=True)
        try:
            proc.wait(timeout=timeout)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)  # the wrapper and the child: their own session
            proc.wait()
            timed_out = True
        seconds = time.monotonic() - start
        result = json.loads(report.read_text()) if report.exists() else {"returncode": -9, "maxrss_kb": 0}
        out.seek(0), err.seek(0)
        return ChildRun(result["returncode"], timed_out, seconds, result["maxrss_kb"] / 1024, out.read(), err.read())


_baseline: list[float] = []


def baseline_maxrss_mb() -> float:
    """Peak memory of a child that only imports the library (measured once per test session)."""
    if not _baseline:
        run = run_child("pass", timeout=120)
        assert run.returncode == 0, run.stderr
        _baseline.append(run.maxrss_mb)
    return _baseline[0]
