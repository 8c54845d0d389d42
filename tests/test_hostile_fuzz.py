"""Loader fuzz test: seeded mutations of the official fixture pickle and of a small safetensors file.

Every mutant is loaded in a child interpreter (a few children, each a batch, to save start-up) and
must end either loaded or refused with a named error (the CheckpointError family, FileNotFoundError):
never a crash signal, a hang, another exception type, or memory beyond the bound. Seeded, so a
failure names a mutation that can be replayed; sized to stay within about a minute on two cores.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from fuzz_harness import baseline_maxrss_mb, run_child

SEED = 20240519
PICKLE_MUTANTS = 40
SAFETENSORS_MUTANTS = 160
MAX_SECONDS_EACH = 15.0
MAX_EXTRA_MB = 500.0  # the fixture's honest import alone peaks near 300 MB above the baseline
CHILD_TIMEOUT = 240.0
SNAPSHOT = Path(__file__).parent / "fixtures" / "official_tiny" / "network-snapshot.pkl"

_CHILD = """
import json, os, random, sys, tempfile, time
sys.path.insert(0, "tests")
import fuzz_mutations as fm
import stylegan_v
from stylegan_v.errors import CheckpointError
from stylegan_v.legacy import read_snapshot

kind, seed, count, source = {kind!r}, {seed!r}, {count!r}, {source!r}
work = tempfile.mkdtemp(prefix="fuzz_")
os.environ["STYLEGAN_V_CACHE"] = os.path.join(work, "cache")
if source:
    data = open(source, "rb").read()
else:  # a small checkpoint of our format, written here
    from stylegan_v.config import preset
    from stylegan_v.generator import Generator
    path = os.path.join(work, "g.safetensors")
    stylegan_v.save(Generator(preset("tiny32").generator), path, model_config=preset("tiny32"))
    data = open(path, "rb").read()
positions = fm.opcode_positions(data) if kind == "pkl" else None
for i in range(count):
    rng = random.Random(seed * 1000 + i)
    how, mutant = fm.mutate_pickle(data, rng, positions) if kind == "pkl" else fm.mutate_safetensors(data, rng)
    path = os.path.join(work, f"mutant-{{i}}." + ("pkl" if kind == "pkl" else "safetensors"))
    open(path, "wb").write(mutant)
    print(json.dumps({{"start": i, "how": how}}), flush=True)
    start = time.perf_counter()
    try:
        if kind == "pkl":
            read_snapshot(path, sha256="0" * 64)
        else:
            stylegan_v.load(path)
        outcome = "loaded"
    except (CheckpointError, FileNotFoundError) as e:
        outcome = "refused"
    except BaseException as e:
        outcome = f"unexpected {{type(e).__name__}}: {{e}}"[:500]
    os.remove(path)
    print(json.dumps({{"i": i, "how": how, "outcome": outcome, "seconds": time.perf_counter() - start}}), flush=True)
"""


def _fuzz(kind: str, count: int):
    source = str(SNAPSHOT) if kind == "pkl" else ""
    return run_child(_CHILD.format(kind=kind, seed=SEED, count=count, source=source), timeout=CHILD_TIMEOUT)


def test_mutated_checkpoints_end_in_a_named_error_or_load():
    baseline = baseline_maxrss_mb()
    with ThreadPoolExecutor(2) as pool:
        runs = dict(zip(("pkl", "safetensors"), pool.map(_fuzz, ("pkl", "safetensors"),
                                                         (PICKLE_MUTANTS, SAFETENSORS_MUTANTS))))
    for kind, run in runs.items():
        lines = run.results()
        done = [r for r in lines if "outcome" in r]
        started = [r for r in lines if "start" in r]
        where = f"{kind} mutant {started[-1] if started else None} (seed {SEED})"
        assert not run.timed_out, f"hang at {where}"
        assert run.returncode == 0, f"exit {run.returncode} at {where}: {run.stderr[-2000:]}"
        assert len(done) == (PICKLE_MUTANTS if kind == "pkl" else SAFETENSORS_MUTANTS)
        unexpected = [r for r in done if r["outcome"] not in ("loaded", "refused")]
        assert not unexpected, unexpected[:5]
        slow = [r for r in done if r["seconds"] > MAX_SECONDS_EACH]
        assert not slow, slow[:5]
        extra = run.maxrss_mb - baseline
        assert extra < MAX_EXTRA_MB, f"{kind}: {extra:.0f} MB above the baseline"
        counts = {o: sum(r["outcome"] == o for r in done) for o in ("loaded", "refused")}
        print(f"{kind}: {counts} in {run.seconds:.1f} s, {extra:.0f} MB above the baseline")
    # The mutations reach past the first checks: some mutants are refused, and some still load.
    assert any(r["outcome"] == "refused" for run in runs.values() for r in run.results() if "outcome" in r)


def test_the_mutations_are_seeded():
    import random

    import fuzz_mutations as fm

    data = SNAPSHOT.read_bytes()[:4096]
    assert fm.flip_bits(data, random.Random(1)) == fm.flip_bits(data, random.Random(1))
    assert fm.truncate(data, random.Random(2)) == fm.truncate(data, random.Random(2))
    assert pytest is not None
