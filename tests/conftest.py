"""Shared fixtures. The official_tiny snapshot was made by the original code (random weights)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

FIXTURES = Path(__file__).resolve().parent / "fixtures"
OFFICIAL_TINY = FIXTURES / "official_tiny"


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory, monkeypatch):
    # .pkl conversions are cached by content hash; keep tests off the user's cache.
    monkeypatch.setenv("STYLEGAN_V_CACHE", str(tmp_path_factory.getbasetemp() / "svcache"))


@pytest.fixture(scope="session")
def official_pkl() -> Path:
    return OFFICIAL_TINY / "network-snapshot.pkl"


@pytest.fixture(scope="session")
def reference() -> dict[str, torch.Tensor]:
    with np.load(OFFICIAL_TINY / "reference.npz") as data:
        return {k: torch.from_numpy(data[k]) for k in data.files}


@pytest.fixture(scope="module", params=["1 thread", "2 threads", "2 threads, deterministic"])
def threading(request):
    """Run a module's tests with 1 and 2 threads and under deterministic algorithms: float32
    results differ in the last bits between these, and no test may depend on which."""
    threads, deterministic = torch.get_num_threads(), torch.are_deterministic_algorithms_enabled()
    torch.set_num_threads(1 if request.param == "1 thread" else 2)
    torch.use_deterministic_algorithms("deterministic" in request.param)
    yield request.param
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(deterministic)


@pytest.fixture(scope="session")
def G64(official_pkl):
    """The official fixture's G_ema in float64: the oracle of the exact function."""
    import stylegan_v
    from parity_bounds import float64_copy

    return float64_copy(stylegan_v.load(official_pkl))


@pytest.fixture(scope="session")
def oracle(G64, reference):
    """Float64 outputs and float32 bounds for the reference inputs, by truncation psi (1.0, 0.7)."""
    from parity_bounds import generator_oracle

    r = reference
    return {psi: generator_oracle(G64, r["z"], r["c"], r["t"], r["motion_z"], truncation_psi=psi) for psi in (1.0, 0.7)}


@pytest.fixture
def tiny_generator():
    from stylegan_v import Generator, preset

    torch.manual_seed(0)
    return Generator(preset("tiny32").generator).eval()
