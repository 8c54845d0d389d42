"""Safe import of the original StyleGAN-V `network-snapshot-*.pkl` files.

- `unpickler`: the restricted unpickler, the security boundary (no code from the file runs);
- `modules`: the pickled module trees -> state dicts;
- `config_recovery`: the ModelConfig from the shapes and the pickled OmegaConf config;
- `importer`: `read_snapshot`, which ties these together and checks the result against
  the networks (`stylegan_v.layout`). `stylegan_v.checkpoint.convert_pickle` writes it
  to our format.
"""

from ..errors import LegacyLayoutError, SnapshotError
from .importer import OriginalSnapshot, read_snapshot

__all__ = ["LegacyLayoutError", "OriginalSnapshot", "SnapshotError", "read_snapshot"]
