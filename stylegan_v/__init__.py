"""StyleGAN-V as a library: exact generator and discriminator, safe checkpoints, streaming renderer.

    import stylegan_v
    G = stylegan_v.load("model.safetensors")          # or an original .pkl, imported safely
    frames = G(z, c, t)                               # [B*F, 3, H, W], t in dataset frames
"""

from .lazy import lazy_exports

# The names below (and the submodules) are imported on first use, so that `python -m stylegan_v
# --help` and the argument checks of the command-line tools answer without waiting for torch.
_EXPORTS = {
    "convert_pickle": "checkpoint", "load": "checkpoint", "save": "checkpoint", "save_networks": "checkpoint",
    "PRESETS": "config", "DiscriminatorConfig": "config", "GeneratorConfig": "config", "ModelConfig": "config",
    "preset": "config", "Discriminator": "discriminator", "CheckpointError": "errors", "Generator": "generator",
}
__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
