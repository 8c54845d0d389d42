"""StyleGAN-V as a library: exact generator and discriminator, safe checkpoints, streaming renderer.

    import stylegan_v
    G = stylegan_v.load("model.safetensors")          # or an original .pkl, imported safely
    frames = G(z, c, t)                               # [B*F, 3, H, W], t in dataset frames
"""

import importlib
import importlib.util

# The names below (and the submodules) are imported on first use, so that `python -m stylegan_v
# --help` and the argument checks of the command-line tools answer without waiting for torch.
_EXPORTS = {
    "convert_pickle": "checkpoint", "load": "checkpoint", "save": "checkpoint", "save_networks": "checkpoint",
    "PRESETS": "config", "DiscriminatorConfig": "config", "GeneratorConfig": "config", "ModelConfig": "config",
    "preset": "config", "Discriminator": "discriminator", "CheckpointError": "errors", "Generator": "generator",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    module = _EXPORTS.get(name)
    if module is not None:
        value = getattr(importlib.import_module(f".{module}", __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)  # a submodule reached as an attribute
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
