"""H.264 mp4 writing through PyAV, streamed frame batch by frame batch."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from .fileio import atomic_output


def _even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even sizes: repeat the last row/column where needed."""
    h, w = frames.shape[1:3]
    pad = ((0, 0), (0, h % 2), (0, w % 2), (0, 0))
    return np.pad(frames, pad, mode="edge") if h % 2 or w % 2 else frames


def write_mp4(path: str | os.PathLike, batches: Iterable[np.ndarray | torch.Tensor], fps: float, crf: int = 18,
              metadata: Mapping[str, str] | None = None, preset: str = "medium") -> int:
    """Encode uint8 batches [n, H, W, 3] to `path` (written atomically); returns the frame count."""
    import av

    if not fps > 0:
        raise ValueError(f"fps must be positive, got {fps}")
    if not 0 <= crf <= 51:
        raise ValueError(f"crf must be in 0..51, got {crf}")
    count = 0
    with atomic_output(path, suffix=Path(path).suffix or ".mp4") as tmp:
        # use_metadata_tags keeps arbitrary keys (ComfyUI embeds "workflow" and "prompt" this way).
        with av.open(tmp, mode="w", format="mp4", options={"movflags": "use_metadata_tags"}) as container:
            for key, value in (metadata or {}).items():
                container.metadata[key] = value
            stream = None
            for batch in batches:
                batch = batch.cpu().numpy() if isinstance(batch, torch.Tensor) else np.asarray(batch)
                if batch.dtype != np.uint8 or batch.ndim != 4 or batch.shape[-1] != 3:
                    raise ValueError(f"frames must be uint8 [n, H, W, 3], got {batch.dtype} {list(batch.shape)}")
                batch = _even(batch)
                if stream is None:
                    stream = container.add_stream("libx264", rate=Fraction(fps).limit_denominator(100000))
                    stream.width, stream.height = batch.shape[2], batch.shape[1]
                    stream.pix_fmt = "yuv420p"
                    stream.options = {"crf": str(crf), "preset": preset}
                for frame in batch:
                    for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                        container.mux(packet)
                    count += 1
            if stream is None:
                raise ValueError("no frames to write")
            for packet in stream.encode():
                container.mux(packet)
    return count


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode a whole (short) video to uint8 [F, H, W, 3] and its frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate or stream.base_rate or 0)
    return np.stack(frames), fps
