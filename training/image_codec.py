"""Still-image encode/decode for dataset frames.

Frames are written as PNG by Pillow (deterministic: the same pixels give the same
bytes) and read back through FFmpeg's image decoders via `av`, which also covers
the JPEG/WebP/BMP/TIFF frames of existing datasets.
"""

from __future__ import annotations

import io

import av
import numpy as np
from PIL import Image

IMAGE_EXTENSIONS = {
    ".png": "png",
    ".jpg": "mjpeg",
    ".jpeg": "mjpeg",
    ".bmp": "bmp",
    ".webp": "webp",
    ".tif": "tiff",
    ".tiff": "tiff",
}


def is_image_name(name: str) -> bool:
    dot = name.rfind(".")
    return dot >= 0 and name[dot:].lower() in IMAGE_EXTENSIONS


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """uint8 [H, W, 3] (or [H, W] grey) -> PNG bytes (8-bit, no interlace)."""
    if image.dtype != np.uint8:
        raise ValueError(f"encode_png expects uint8 pixels, got {image.dtype}")
    if not (image.ndim == 2 or image.ndim == 3 and image.shape[2] == 3):
        raise ValueError(f"encode_png expects [H, W, 3] or [H, W], got shape {tuple(image.shape)}")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise ValueError(f"encode_png got an empty image of shape {tuple(image.shape)}")
    out = io.BytesIO()
    # uint8 [H, W] is Pillow's mode "L" (grey), [H, W, 3] its "RGB".
    Image.fromarray(np.ascontiguousarray(image)).save(out, format="PNG", compress_level=compress_level)
    return out.getvalue()


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
