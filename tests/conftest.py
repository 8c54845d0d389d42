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


@pytest.fixture
def tiny_generator():
    from stylegan_v import Generator, preset

    torch.manual_seed(0)
    return Generator(preset("tiny32").generator).eval()
