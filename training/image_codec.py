"""Still-image encode/decode for dataset frames, without PIL.

Frames are written as PNG by a tiny zlib encoder (byte-for-byte deterministic,
independent of the FFmpeg build) and read back through FFmpeg's image decoders
via `av`, which also covers the JPEG/WebP/BMP/TIFF frames of existing datasets.
"""

from __future__ import annotations

import struct
import zlib

import av
import numpy as np

IMAGE_EXTENSIONS = {
    ".png": "png",
    ".jpg": "mjpeg",
    ".jpeg": "mjpeg",
    ".bmp": "bmp",
    ".webp": "webp",
    ".tif": "tiff",
    ".tiff": "tiff",
}

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    crc = zlib.crc32(kind + payload) & 0xFFFFFFFF
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", crc)


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """uint8 [H, W, 3] (or [H, W] grey) -> PNG bytes (8-bit, no interlace)."""
    if image.dtype != np.uint8:
        raise ValueError(f"encode_png expects uint8 pixels, got {image.dtype}")
    if image.ndim == 2:
        color_type, channels = 0, 1
    elif image.ndim == 3 and image.shape[2] == 3:
        color_type, channels = 2, 3
    else:
        raise ValueError(f"encode_png expects [H, W, 3] or [H, W], got shape {tuple(image.shape)}")
    height, width = image.shape[:2]
    if height == 0 or width == 0:
        raise ValueError(f"encode_png got an empty image of shape {tuple(image.shape)}")
    rows = np.ascontiguousarray(image).reshape(height, width * channels)
    # Filter type 0 (None) on every row: a leading zero byte per scanline.
    raw = np.concatenate([np.zeros((height, 1), np.uint8), rows], axis=1).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    return b"".join([
        _PNG_SIGNATURE,
        _png_chunk(b"IHDR", header),
        _png_chunk(b"IDAT", zlib.compress(raw, compress_level)),
        _png_chunk(b"IEND", b""),
    ])


def decode_image(data: bytes, name: str = "image.png") -> np.ndarray:
    """Encoded image bytes -> uint8 [H, W, 3] RGB. `name` picks the codec and labels errors."""
    dot = name.rfind(".")
    codec = IMAGE_EXTENSIONS.get(name[dot:].lower() if dot >= 0 else "")
    if codec is None:
        raise ValueError(f"{name}: unsupported image type (known: {', '.join(sorted(IMAGE_EXTENSIONS))})")
    if len(data) == 0:
        raise ValueError(f"{name}: empty file")
    try:
        # A fresh context per image: FFmpeg's PNG decoder keeps state between packets
        # (APNG handling), so reusing one context decodes later images wrongly.
        decoder = av.CodecContext.create(codec, "r")
        frames = decoder.decode(av.Packet(data))
        if not frames:
            frames = decoder.decode(None)
        if not frames:
            raise ValueError("decoder returned no picture")
        return frames[0].to_ndarray(format="rgb24")
    except (av.FFmpegError, ValueError) as error:
        raise ValueError(f"{name}: cannot decode image ({error})") from error
