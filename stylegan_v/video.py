"""H.264 mp4 writing through PyAV, streamed frame batch by frame batch."""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
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
    with atomic_output(path, suffix=Path(path).suffix or ".mp4", what="video") as tmp:
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


class FrameFeed:
    """Frame batches handed from one thread to another through a short queue, so memory stays bounded.

    The producer `put`s batches and then `close`s the feed; the consumer iterates over it. Closing
    with an error makes the consumer raise it where it iterates (an encoder then abandons its file).
    A consumer that gives up early must `drain` the feed, or the producer would block on it forever.
    """

    _END = object()

    def __init__(self, depth: int = 2):
        self._items: queue.Queue = queue.Queue(maxsize=depth)

    def put(self, batch) -> None:
        self._items.put(batch)

    def close(self, error: BaseException | None = None) -> None:
        self._items.put(self._END if error is None else error)

    def __iter__(self) -> Iterator:
        while True:
            item = self._items.get()
            if item is self._END:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def drain(self) -> None:
        """Discard everything up to the producer's `close`."""
        while True:
            item = self._items.get()
            if item is self._END or isinstance(item, BaseException):
                return


class _Abandoned(Exception):
    """Sent to the encoders when the frames stop coming: their partial files are removed."""


def write_mp4s(paths: Sequence[str | os.PathLike], batches: Iterable[np.ndarray | torch.Tensor], fps: float,
               crf: int = 18, metadata: Mapping[str, str] | None = None) -> None:
    """Encode video b of every uint8 batch [B, n, H, W, 3] to paths[b], each file in its own thread.

    Encoding runs beside the producer of `batches` (e.g. a renderer), at most a few batches behind it.
    If the batches fail, no file is left; if an encoder fails, the next batch raises a RuntimeError.
    """
    feeds = [FrameFeed() for _ in paths]
    errors: list[BaseException] = []

    def encode(path: str | os.PathLike, feed: FrameFeed) -> None:
        try:
            write_mp4(path, feed, fps, crf=crf, metadata=metadata)
        except _Abandoned:
            pass
        except BaseException as e:  # reported by the producing thread
            errors.append(e)
            feed.drain()

    def check() -> None:
        if errors:
            raise RuntimeError(f"writing the mp4 failed: {errors[0]}") from errors[0]

    encoders = [threading.Thread(target=encode, args=(path, feed), daemon=True) for path, feed in zip(paths, feeds)]
    for thread in encoders:
        thread.start()

    def finish(error: BaseException | None = None) -> None:
        for feed in feeds:
            feed.close(error)
        for thread in encoders:
            thread.join()

    try:
        for batch in batches:
            if len(batch) != len(feeds):
                raise ValueError(f"a batch of {len(batch)} videos for {len(feeds)} files")
            for feed, video in zip(feeds, batch):
                feed.put(video)
            check()
    except BaseException:
        finish(_Abandoned())  # no half-written files are left behind
        raise
    finish()
    check()


def read_video(path: str | os.PathLike) -> tuple[np.ndarray, float]:
    """Decode a whole (short) video to uint8 [F, H, W, 3] and its frame rate."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
        fps = float(stream.average_rate or stream.base_rate or 0)
    return np.stack(frames), fps
