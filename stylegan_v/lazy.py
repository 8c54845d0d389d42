"""Package attributes imported on first use (PEP 562), so importing a package costs nothing.

The command line's --help and argument checks must answer without waiting for torch, which
every network module imports; packages therefore name their exports here instead of
importing them eagerly.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`: each name in `exports` comes from the submodule it
    maps to, and any submodule can be reached as an attribute; both are imported on first use."""

    def __getattr__(name: str):
        module = exports.get(name)
        if module is not None:
            value = getattr(importlib.import_module(f"{package}.{module}"), name)
        elif not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            value = importlib.import_module(f"{package}.{name}")
        else:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        setattr(importlib.import_module(package), name, value)
        return value

    def __dir__() -> list[str]:
        return sorted(set(vars(importlib.import_module(package))) | set(exports))

    return __getattr__, __dir__
