"""The checkpoint error family: every loader raises these, so callers catch one type.

`CheckpointError` is a ValueError: a file that cannot be used is bad input, and callers
that already catch ValueError (the nodes, the CLI) report it without knowing the loader.
"""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says which file and why."""


class SnapshotError(CheckpointError):
    """An original `network-snapshot-*.pkl` that cannot be imported; the message names the file and the problem."""


class LegacyLayoutError(SnapshotError):
    """A snapshot from the older internal StyleGAN-V code base, whose networks differ from the public one."""
