"""Pickled torch module trees (inert records) -> state dicts in torch's order."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import SnapshotError
from .unpickler import INERT_MODULE_CLASSES, Inert, PersistentObject

# Limits that keep a hostile file from making the tree walk loop for ever.
_MAX_MODULE_DEPTH = 64
_MAX_MODULES = 100_000


def module_state(node: Any, where: str) -> dict:
    """The pickled `__dict__` of a torch module record; SnapshotError if `node` is not one."""
    if isinstance(node, PersistentObject):
        state = node.state
    elif isinstance(node, Inert) and node.global_name in INERT_MODULE_CLASSES:
        state = node.state
    else:
        raise SnapshotError(f"{where}: expected a network module, found {describe(node)}")
    if not isinstance(state, dict):
        raise SnapshotError(f"{where}: module has no pickled state")
    for name in ("_parameters", "_buffers", "_modules"):
        if not isinstance(state.get(name), Mapping):
            raise SnapshotError(f"{where}: module state lacks {name}; not a torch module layout")
    return state


def describe(node: Any) -> str:
    if isinstance(node, PersistentObject):
        return f"persistent {node.class_name}"
    if isinstance(node, Inert):
        return node.global_name
    return type(node).__name__


def class_name(node: Any) -> str:
    if isinstance(node, PersistentObject):
        return node.class_name
    if isinstance(node, Inert):
        return node.global_name.rsplit(".", 1)[-1]
    return type(node).__name__


def init_kwargs(root: Any) -> Mapping:
    """The constructor arguments `persistence` records on a network (empty when absent)."""
    kwargs = root.state.get("_init_kwargs") if isinstance(root, PersistentObject) else None
    return kwargs if isinstance(kwargs, Mapping) else {}


def submodule(root: Any, path: str, net: str) -> Any | None:
    node = root
    for name in path.split("."):
        child = module_state(node, net)["_modules"].get(name)
        if child is None:
            return None
        node = child
    return node


def collect_state_dict(root: Any, net: str) -> dict[str, torch.Tensor]:
    """torch's `state_dict` order: a module's parameters, then persistent buffers, then its children."""
    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def visit(node: Any, prefix: str, depth: int) -> None:
        where = f"{net}.{prefix[:-1]}" if prefix else net
        if depth > _MAX_MODULE_DEPTH:
            raise SnapshotError(f"{where}: module tree is deeper than {_MAX_MODULE_DEPTH} levels")
        if id(node) in seen:
            raise SnapshotError(f"{where}: module tree has a cycle or a shared module")
        seen.add(id(node))
        if len(seen) > _MAX_MODULES:
            raise SnapshotError(f"{net}: module tree has more than {_MAX_MODULES} modules")
        state = module_state(node, where)
        skip = state.get("_non_persistent_buffers_set") or ()
        if not isinstance(skip, (set, frozenset, list, tuple)):
            raise SnapshotError(f"{where}: malformed _non_persistent_buffers_set")
        entries = list(state["_parameters"].items())
        entries += [(k, v) for k, v in state["_buffers"].items() if k not in skip]
        for name, tensor in entries:
            if tensor is None:
                continue
            if not isinstance(name, str) or not isinstance(tensor, torch.Tensor):
                raise SnapshotError(f"{where}: entry {name!r} is {describe(tensor)}, not a tensor")
            out[prefix + name] = tensor
        for name, child in state["_modules"].items():
            if child is None:
                continue
            if not isinstance(name, str):
                raise SnapshotError(f"{where}: malformed child module name {name!r}")
            visit(child, f"{prefix}{name}.", depth + 1)

    visit(root, "", 0)
    return out


def clean_tensor(tensor: torch.Tensor, where: str) -> torch.Tensor:
    """A compact float32 copy (no shared storage, no grad); SnapshotError for non-float or non-finite data."""
    if not tensor.is_floating_point():
        raise SnapshotError(f"{where} has dtype {tensor.dtype}; expected floating point weights")
    tensor = tensor.detach().to(dtype=torch.float32, copy=True).contiguous()
    if not torch.isfinite(tensor).all():
        raise SnapshotError(f"{where} contains NaN or infinite values")
    return tensor
