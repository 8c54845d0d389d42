"""Run loader code in a child interpreter and measure it: exit status, wall time and peak memory.

Hostile files must be refused without taking the process down, so they are loaded in a child:
a crash signal, a hang or a memory blow-up shows up here instead of killing the test run.
Peak memory is the child's own `ru_maxrss` (from `os.wait4`), compared with a child that only
imports the library.
"""

from __future__ import annotations

import json
import os
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


def run_child(code: str, timeout: float) -> ChildRun:
    """Run `code` (after the library imports) in a fresh interpreter, with the repository on its path."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               OMP_NUM_THREADS="1")
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.monotonic()
        proc = subprocess.Popen([sys.executable, "-c", IMPORTS + code], cwd=ROOT, env=env, stdout=out, stderr=err)
        status, usage, timed_out = _wait(proc, start + timeout)
        seconds = time.monotonic() - start
        proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, by wait4
        out.seek(0), err.seek(0)
        return ChildRun(proc.returncode, timed_out, seconds, usage.ru_maxrss / 1024, out.read(), err.read())


def _wait(proc: subprocess.Popen, deadline: float):
    """wait4 (not waitpid) so that the child's own peak memory comes back; kills it at the deadline."""
    while True:
        pid, status, usage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            return status, usage, False
        if time.monotonic() > deadline:
            proc.kill()
            _, status, usage = os.wait4(proc.pid, 0)
            return status, usage, True
        time.sleep(0.01)


_baseline: list[float] = []


def baseline_maxrss_mb() -> float:
    """Peak memory of a child that only imports the library (measured once per test session)."""
    if not _baseline:
        run = run_child("pass", timeout=120)
        assert run.returncode == 0, run.stderr
        _baseline.append(run.maxrss_mb)
    return _baseline[0]
