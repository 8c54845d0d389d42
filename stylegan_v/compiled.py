"""torch.compile of the synthesis network, with a persistent cache and an eager fallback.

On a CPU, inductor generates C++ and builds it with the machine's C++ compiler, so
compiling needs one: `compile_synthesis` looks for the compiler inductor would use
($CXX, else g++) and, when there is none, leaves the network eager and says so in
one line, instead of failing at the first frame. The first call compiles (minutes on
a small CPU); inductor keeps what it built in its cache folder, which is put under
this project's cache (next to converted snapshots) unless TORCHINDUCTOR_CACHE_DIR is
set, so that a later process finds it there rather than in a /tmp that may be wiped.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import torch

from .generator import Generator


def inductor_cache_dir() -> Path:
    """Where compiled kernels are kept: TORCHINDUCTOR_CACHE_DIR, else the project's cache."""
    from .checkpoint import cache_dir

    given = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    return Path(given) if given else cache_dir().parent / "inductor"


def _compiler_name() -> str:
    # Inductor's own choice (torch._inductor.config.cpp.cxx), without importing inductor, which takes seconds.
    return os.environ.get("CXX") or ("clang++" if sys.platform == "darwin" else "g++")


def cpp_compiler() -> str | None:
    """The C++ compiler inductor's CPU backend would build with ($CXX, else g++), or None if it is missing."""
    return shutil.which(_compiler_name())


def compile_synthesis(G: Generator, device: torch.device | str, backend: str = "inductor") -> str | None:
    """Compile G's synthesis in place, or leave it eager; returns a one-line note when it stays eager.

    Only `synthesis.frames` is compiled: the motion path and chunking are cheap host-side work.
    """
    if backend == "inductor" and torch.device(device).type == "cpu" and cpp_compiler() is None:
        return (f"note: no C++ compiler ({_compiler_name()}) found, so torch.compile cannot build kernels; "
                "rendering eager")
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(inductor_cache_dir()))
    G.synthesis.frames = torch.compile(G.synthesis.frames, backend=backend)
    return None
