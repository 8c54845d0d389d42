"""The ComfyUI node API the pack's nodes are written against, taken from a pinned API version.

ComfyUI publishes its V3 node API twice: as `comfy_api.latest`, which follows every release,
and as pinned versions (`comfy_api.v0_0_2`, and `comfy_api.v0_0_3` in later releases) whose
names stay what they were when `latest` moves on. The nodes use `io`, `ui`, `ComfyExtension`,
`Input`, `InputImpl` and `Types`; this module takes them from the newest pinned version in
PINNED_VERSIONS that the running host has and that exports all of them, and from `latest` on a
host with none of those. `comfy_api.v0_0_1` is left out on purpose: it exports no `io` or `ui`.

A pinned version newer than those listed is not picked up by itself: it is an API the nodes have
not been checked against, so it is added here once its adapter module has been read.

Today each pinned version is a thin adapter that re-exports the objects of `latest` (0.3.75's
`v0_0_2.io` is `latest.io`), so the choice changes nothing on the hosts known now; it is what
keeps the nodes' imports stable when `latest` renames or drops a name.

`schema()` builds an `io.Schema`, leaving out the purely presentational fields that newer
releases added to the Schema dataclass when the host's Schema does not have them, so a node can
declare `search_aliases` and still load on an older host.

Import this module only inside ComfyUI: it imports comfy_api.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from types import ModuleType

PINNED_VERSIONS = ("v0_0_3", "v0_0_2")  # newest first
FALLBACK_VERSION = "latest"
NAMES = ("io", "ui", "ComfyExtension", "Input", "InputImpl", "Types")
# Schema fields newer releases read and an older Schema (a dataclass) would refuse as unknown
# keywords. Without them a node only misses a search synonym or its place in the Essentials tab.
NEWER_SCHEMA_FIELDS = frozenset({"search_aliases", "essentials_category"})


def choose_api(import_module: Callable[[str], ModuleType] = importlib.import_module) -> tuple[str, ModuleType]:
    """(version name, module): the newest listed pinned version that has every name, else `latest`."""
    for version in PINNED_VERSIONS:
        name = f"comfy_api.{version}"
        try:
            module = import_module(name)
        except ModuleNotFoundError as e:
            if e.name not in (name, "comfy_api"):
                raise  # the version exists but something it imports is missing: a broken host, say so
            continue
        if all(hasattr(module, attr) for attr in NAMES):
            return version, module
    module = import_module(f"comfy_api.{FALLBACK_VERSION}")
    missing = [attr for attr in NAMES if not hasattr(module, attr)]
    if missing:
        raise ImportError(f"this ComfyUI's comfy_api.latest has no {', '.join(missing)}: the StyleGAN-V nodes need "
                          "a ComfyUI with the V3 node API (see requires-comfyui in the pack's pyproject.toml)")
    return FALLBACK_VERSION, module


API_VERSION, _api = choose_api()
io = _api.io
ui = _api.ui
ComfyExtension = _api.ComfyExtension
Input = _api.Input
InputImpl = _api.InputImpl
Types = _api.Types


def schema_fields(schema_class: type, fields: dict) -> dict:
    """`fields` less those in NEWER_SCHEMA_FIELDS that `schema_class` lacks; any other unknown
    field is kept, so a misspelt one still fails loudly in the Schema constructor."""
    known = {field.name for field in dataclasses.fields(schema_class)}
    return {key: value for key, value in fields.items() if key in known or key not in NEWER_SCHEMA_FIELDS}


def schema(**fields) -> io.Schema:
    """`io.Schema(**fields)` on any supported host (see NEWER_SCHEMA_FIELDS)."""
    return io.Schema(**schema_fields(io.Schema, fields))


__all__ = [
    "API_VERSION",
    "NEWER_SCHEMA_FIELDS",
    "PINNED_VERSIONS",
    "ComfyExtension",
    "Input",
    "InputImpl",
    "Types",
    "choose_api",
    "io",
    "schema",
    "schema_fields",
    "ui",
]
