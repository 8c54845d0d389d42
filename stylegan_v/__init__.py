"""StyleGAN-V as a library: exact generator and discriminator, safe checkpoints, streaming renderer.

    import stylegan_v
    G = stylegan_v.load("model.safetensors")          # or an original .pkl, imported safely
    frames = G(z, c, t)                               # [B*F, 3, H, W], t in dataset frames
"""

from .checkpoint import convert_pickle, load, save, save_networks
from .config import PRESETS, DiscriminatorConfig, GeneratorConfig, ModelConfig, preset
from .discriminator import Discriminator
from .errors import CheckpointError
from .generator import Generator

__all__ = [
    "CheckpointError", "Discriminator", "DiscriminatorConfig", "Generator", "GeneratorConfig", "ModelConfig",
    "PRESETS", "convert_pickle", "load", "preset", "save", "save_networks",
]
__version__ = "0.1.0"
