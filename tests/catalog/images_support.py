"""Shared by the image tests: pictures made with Pillow, uploads, and extra live servers with their own Settings."""

from __future__ import annotations

import io
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from fastapi import FastAPI
from PIL import Image

from skycart.app import create_app
from skycart.config import Settings
from tests.conftest import _free_port

ULID_PATTERN = r"[0-9A-HJKMNP-TV-Z]{26}"


@dataclass
class ExtraServer:
    base_url: str
    app: FastAPI
    settings: Settings


@contextmanager
def serve(settings: Settings) -> Iterator[ExtraServer]:
    """The app with these settings on a free port, started like the `server` fixture starts its own."""
    port = _free_port()
    app = create_app(settings)
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not uv.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("image test server did not start")
        time.sleep(0.02)
    try:
        yield ExtraServer(f"http://127.0.0.1:{port}", app, settings)
    finally:
        uv.should_exit = True
        thread.join(timeout=20)


def picture(
    fmt: str, size: tuple[int, int] = (1200, 800), *, mode: str = "RGB", orientation: int | None = None
) -> bytes:
    """An image with some detail in it, encoded as `fmt` (JPEG, PNG, WEBP, GIF...)."""
    width, height = size
    image = Image.linear_gradient("L").resize(size).convert(mode)
    image.paste(Image.new(mode, (width // 4, height // 4), "red" if mode != "L" else 128), (width // 8, height // 8))
    out = io.BytesIO()
    kwargs: dict[str, Any] = {}
    if orientation is not None:
        exif = Image.Exif()
        exif[0x0112] = orientation
        kwargs["exif"] = exif.tobytes()
    image.save(out, fmt, **kwargs)
    return out.getvalue()


def flat_png(size: tuple[int, int]) -> bytes:
    """A PNG of one flat colour: a few kB on the wire, width x height pixels once decoded."""
    out = io.BytesIO()
    Image.new("1", size, 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def camera_jpeg(size: tuple[int, int] = (3000, 2000), quality: int = 85) -> bytes:
    """A photo-sized JPEG of realistic weight (noise compresses like detail): about 2.3 MB at 3000x2000."""
    noise = Image.effect_noise(size, 40).convert("L")
    gradient = Image.linear_gradient("L").resize(size)
    out = io.BytesIO()
    Image.merge("RGB", (noise, gradient, Image.blend(noise, gradient, 0.5))).save(out, "JPEG", quality=quality)
    return out.getvalue()


def upload(
    client: httpx.Client, sku: str, data: bytes, *, filename: str = "photo.jpg", content_type: str = "image/jpeg"
) -> httpx.Response:
    return client.post(f"/v1/products/{sku}/images", files={"file": (filename, data, content_type)})


def fetch(client: httpx.Client, url: str) -> httpx.Response:
    """GET an image URL as a passenger's device would: no API key; relative URLs are the API's own."""
    if url.startswith("/"):
        return httpx.get(str(client.base_url).rstrip("/") + url, timeout=30)
    return httpx.get(url, timeout=30)


def opened(response: httpx.Response) -> Image.Image:
    assert response.status_code == 200, (response.status_code, response.text[:200])
    image = Image.open(io.BytesIO(response.content))
    image.load()
    return image


def timed_uploads(client: httpx.Client, sku: str, data: bytes, runs: int = 3) -> str:
    """Upload `data` `runs` times after one small warm-up upload; best and median wall time, end to end."""
    upload(client, sku, picture("JPEG", (64, 64)))
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        response = upload(client, sku, data)
        timings.append(time.perf_counter() - started)
        assert response.status_code == 201, response.text
    timings.sort()
    return f"best {timings[0] * 1000:.0f} ms, median {timings[len(timings) // 2] * 1000:.0f} ms of {runs}"
