"""What an uploaded product image is, and its thumbnails: Pillow, no I/O, run in a worker thread.

The format is what Pillow finds in the bytes (JPEG, PNG or WebP only), never the file name or the
declared Content-Type. The pixel count is checked from the header, before anything is decoded, so a
small file that would expand into gigabytes (a decompression bomb) is refused cheaply.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass

from PIL import ExifTags, Image, ImageOps

from skycart.errors import TooManyPixels, UnsupportedMediaType, ValidationFailed

# Pillow format -> (content type, file extension) of the originals we keep.
FORMATS = {"JPEG": ("image/jpeg", "jpg"), "PNG": ("image/png", "png"), "WEBP": ("image/webp", "webp")}
# Longest side of each thumbnail, in pixels; thumbnails are WebP.
THUMBNAIL_SIZES = (640, 160)
THUMBNAIL_TYPE = ("image/webp", "webp")
# The file signatures of the accepted formats: a file that carries one but that Pillow cannot read is corrupt.
_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n")
# What Pillow raises for bytes it cannot decode (it has no single base class for them).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, struct.error, IndexError)
# EXIF orientations that turn the picture by 90 degrees, swapping width and height.
_QUARTER_TURNS = {5, 6, 7, 8}


@dataclass(frozen=True, slots=True)
class PreparedImage:
    content_type: str
    extension: str
    # As displayed: EXIF orientation applied.
    width: int
    height: int
    original: bytes
    # Longest side in pixels -> WebP bytes.
    thumbnails: dict[int, bytes]


def _claims_accepted_format(data: bytes) -> bool:
    return data.startswith(_SIGNATURES) or (data[:4] == b"RIFF" and data[8:12] == b"WEBP")


def _open(data: bytes) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data), formats=list(FORMATS))
    except Image.DecompressionBombError as exc:
        raise TooManyPixels(f"file: {exc}") from exc
    except _DECODE_ERRORS as exc:
        if _claims_accepted_format(data):
            raise ValidationFailed("file: the image is corrupt and cannot be read") from exc
        raise UnsupportedMediaType("file: only JPEG, PNG and WebP images are accepted") from exc


def _webp(image: Image.Image, icc_profile: bytes | None) -> bytes:
    out = io.BytesIO()
    image.save(out, "WEBP", quality=80, method=4, **({"icc_profile": icc_profile} if icc_profile else {}))
    return out.getvalue()


def prepare(data: bytes, *, max_pixels: int) -> PreparedImage:
    """Identify, check and decode the upload, and make its thumbnails (CPU-bound: call it in a thread)."""
    if not data:
        raise ValidationFailed("file: the file is empty")
    with _open(data) as image:
        fmt = image.format or ""
        content_type, extension = FORMATS[fmt]
        width, height = image.size
        if width * height > max_pixels:
            raise TooManyPixels(f"file: {width}x{height} is {width * height} pixels; at most {max_pixels} are allowed")
        # JPEG can decode straight to a smaller scale (at least the largest thumbnail), reading the whole file.
        image.draft("RGB", (THUMBNAIL_SIZES[0], THUMBNAIL_SIZES[0]))
        try:
            image.load()
        except Image.DecompressionBombError as exc:
            raise TooManyPixels(f"file: {exc}") from exc
        except _DECODE_ERRORS as exc:
            raise ValidationFailed("file: the image is corrupt or truncated") from exc
        if image.getexif().get(ExifTags.Base.Orientation) in _QUARTER_TURNS:  # PNG may carry EXIF after the pixels
            width, height = height, width
        icc_profile = image.info.get("icc_profile") if image.mode in ("RGB", "RGBA") else None
        upright = ImageOps.exif_transpose(image)
    if upright.mode.startswith("I"):  # 16-bit greyscale PNG: scale to 8 bits rather than clip at 255
        upright = upright.convert("I").point(lambda value: value / 256).convert("L")
    picture = upright.convert("RGBA" if upright.has_transparency_data else "RGB")
    thumbnails: dict[int, bytes] = {}
    for size in THUMBNAIL_SIZES:  # largest first: each smaller one is made from the one before
        picture.thumbnail((size, size), Image.Resampling.LANCZOS, reducing_gap=3.0)
        thumbnails[size] = _webp(picture, icc_profile)
    return PreparedImage(content_type, extension, width, height, data, thumbnails)
