"""The app run from a read-only install and a read-only working directory writes nothing but its data.

The server runs in a mount namespace of its own where the project (virtualenv included), the
Python installation and the working directory are read-only bind mounts, as a container's
read-only root filesystem would be; only the SQLite folder and the image folder are writable.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from skycart.config import Settings
from skycart.platform.migrate import upgrade
from tests.conftest import _free_port, flight_body, product_body
from tests.metering.cluster import onboard, operator_key

PROJECT = Path(__file__).resolve().parents[1]


def _snapshot(*roots: Path) -> dict[str, float]:
    files = {}
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts and ".pytest_cache" not in path.parts:
                files[str(path)] = path.stat().st_mtime
    return files


def test_read_only_install_serves_orders_and_images_writing_only_its_data(tmp_path: Path) -> None:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.fail("this test needs root and unshare (util-linux) for read-only bind mounts")
    data = tmp_path / "data"
    (data / "assets").mkdir(parents=True)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    url = f"sqlite+aiosqlite:///{data / 'skycart.db'}"
    upgrade(Settings(database_url=url))
    op = operator_key(url)
    before = _snapshot(PROJECT / "src", Path(sys.prefix))
    port = _free_port()
    env = {
        **os.environ,
        "SKYCART_DATABASE_URL": url,
        "SKYCART_ASSETS_DIR": str(data / "assets"),
        "SKYCART_LOG_LEVEL": "WARNING",
        "HOME": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    read_only = [PROJECT, Path(sys.base_prefix), Path(sys.prefix), workdir]
    mounts = " && ".join(f"mount --bind {p} {p} && mount -o remount,bind,ro {p}" for p in read_only)
    script = f"{mounts} && cd {workdir} && exec {sys.executable} -m skycart.cli serve --port {port}"
    proc = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert proc.poll() is None and time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base, headers={"X-Api-Key": op}) as admin:
            _code, key = onboard(admin)
        with httpx.Client(base_url=base, headers={"X-Api-Key": key}, timeout=30) as client:
            assert client.post("/v1/products", json=product_body("W", ["EUR"])).status_code == 201
            picture = io.BytesIO()
            Image.new("RGB", (800, 600), (20, 90, 160)).save(picture, "JPEG")
            upload = client.post("/v1/products/W/images", files={"file": ("w.jpg", picture.getvalue(), "image/jpeg")})
            assert upload.status_code == 201, upload.text
            flight = client.post("/v1/flights", json=flight_body()).json()
            client.put(f"/v1/flights/{flight['id']}/inventory", json={"items": [{"sku": "W", "quantity": 3}]})
            menu = client.get(f"/v1/flights/{flight['id']}/menu").json()
            assert menu["items"][0]["images"], "the menu carries the image"
            order = client.post(
                "/v1/orders",
                headers={"Idempotency-Key": "ro-1"},
                json={
                    "flight_id": flight["id"],
                    "seat": "1A",
                    "currency": "EUR",
                    "items": [{"sku": "W", "quantity": 1}],
                    "payment": {"token": "tok_ok"},
                },
            )
            assert order.status_code == 201, order.text
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert code == 0, proc.stdout.read() if proc.stdout else ""
    assert list(workdir.iterdir()) == [], "nothing written to the working directory"
    assert _snapshot(PROJECT / "src", Path(sys.prefix)) == before, "nothing written to the install"
    written = {p.relative_to(data).parts[0] for p in data.rglob("*") if p.is_file()}
    assert written <= {"skycart.db", "skycart.db-wal", "skycart.db-shm", "assets"}, written
    assert any((data / "assets").rglob("*.webp")), "thumbnails stored in the image folder"
