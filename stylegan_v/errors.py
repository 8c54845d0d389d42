"""Errors shared across the library (kept apart so every loader can raise the same types)."""


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message says which file and why."""
