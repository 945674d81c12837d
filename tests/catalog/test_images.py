"""Product images in embedded mode: uploads checked by content, thumbnails, URLs in product and menu answers.

The app under test runs as its own live server (same database as `server`) with a temporary assets folder,
so nothing is written where the tests run. S3 is covered in test_images_s3.py.
"""

from __future__ import annotations

import io
import os
import re
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image
from sqlalchemy import event

from skycart.config import Settings
from skycart.platform.assets import LocalAssets
from tests.catalog.images_support import (
    ULID_PATTERN,
    ExtraServer,
    camera_jpeg,
    fetch,
    flat_png,
    opened,
    picture,
    serve,
    timed_uploads,
    upload,
)
from tests.conftest import AirlineHandle, LiveServer, assert_problem

MAX_BYTES = 5 * 1024 * 1024
FORMATS = [("JPEG", "image/jpeg"), ("PNG", "image/png"), ("WEBP", "image/webp")]


@pytest.fixture(scope="module")
def image_server(server: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ExtraServer]:
    settings = Settings(
        database_url=server.settings.database_url,
        log_level="WARNING",
        metering_flush_seconds=0.3,
        access_log=False,
        assets_bucket=None,
        assets_dir=tmp_path_factory.mktemp("assets") / "images",
    )
    with serve(settings) as extra:
        yield extra


@dataclass
class Shop:
    """An airline, with a client for the image server (the airline's products are created through `server`)."""

    airline: AirlineHandle
    client: httpx.Client
    assets_dir: Path


@pytest.fixture
def make_shop(make_airline: Any, image_server: ExtraServer) -> Iterator[Any]:
    clients: list[httpx.Client] = []

    def _make() -> Shop:
        airline = make_airline()
        client = httpx.Client(base_url=image_server.base_url, headers={"X-Api-Key": airline.key}, timeout=30)
        clients.append(client)
        return Shop(airline, client, image_server.settings.assets_dir)

    yield _make
    for client in clients:
        client.close()


@pytest.fixture
def shop(make_shop: Any) -> Shop:
    return make_shop()


def stored_files(shop: Shop, image_id: str) -> list[str]:
    return sorted(name for folder, _, names in os.walk(shop.assets_dir) if folder.endswith(image_id) for name in names)


@pytest.mark.parametrize(("fmt", "content_type"), FORMATS, ids=[f for f, _ in FORMATS])
def test_upload_answers_201_and_keeps_the_original_and_webp_thumbnails(shop: Shop, fmt: str, content_type: str) -> None:
    shop.airline.product("SNAP")
    data = picture(fmt, (1200, 800))
    response = upload(shop.client, "SNAP", data, filename=f"snap.{fmt.lower()}", content_type=content_type)
    assert response.status_code == 201, response.text
    body = response.json()
    [image] = body["images"]
    assert body["sku"] == "SNAP" and body["image_id"] == image["id"]
    assert re.fullmatch(ULID_PATTERN, image["id"])
    assert (image["content_type"], image["width"], image["height"], image["bytes"]) == (
        content_type,
        1200,
        800,
        len(data),
    )
    assert fetch(shop.client, image["url"]).content == data
    assert set(image["thumbnails"]) == {"160", "640"}
    for size, url in image["thumbnails"].items():
        thumbnail = opened(fetch(shop.client, url))
        assert thumbnail.format == "WEBP"
        assert max(thumbnail.size) == int(size)
        assert thumbnail.size[0] / thumbnail.size[1] == pytest.approx(1.5, rel=0.01)
    assert stored_files(shop, image["id"]) == [
        "160.webp",
        "640.webp",
        f"original.{'jpg' if fmt == 'JPEG' else fmt.lower()}",
    ]


def test_the_format_comes_from_the_content_not_the_name_or_declared_type(shop: Shop) -> None:
    shop.airline.product("SNEAKY")
    response = upload(shop.client, "SNEAKY", picture("PNG"), filename="photo.jpg", content_type="image/jpeg")
    assert response.status_code == 201, response.text
    assert response.json()["images"][0]["content_type"] == "image/png"
    assert fetch(shop.client, response.json()["images"][0]["url"]).headers["content-type"] == "image/png"


def test_thumbnails_are_turned_upright_by_the_exif_orientation(shop: Shop) -> None:
    shop.airline.product("ROTATED")
    response = upload(shop.client, "ROTATED", picture("JPEG", (1200, 800), orientation=6))
    assert response.status_code == 201, response.text
    image = response.json()["images"][0]
    assert (image["width"], image["height"]) == (800, 1200), "width and height as displayed"
    assert opened(fetch(shop.client, image["thumbnails"]["640"])).size[1] == 640
    assert opened(fetch(shop.client, image["thumbnails"]["160"])).size[1] == 160


def test_a_transparent_png_keeps_its_transparency_and_a_small_image_is_never_enlarged(shop: Shop) -> None:
    shop.airline.product("CLEAR")
    sticker = Image.new("RGBA", (300, 100), (0, 0, 0, 0))
    sticker.paste((200, 30, 30, 255), (100, 20, 200, 80))
    out = io.BytesIO()
    sticker.save(out, "PNG")
    response = upload(shop.client, "CLEAR", out.getvalue())
    assert response.status_code == 201, response.text
    thumbnails = response.json()["images"][0]["thumbnails"]
    assert opened(fetch(shop.client, thumbnails["640"])).size == (300, 100)
    small = opened(fetch(shop.client, thumbnails["160"]))
    assert small.size == (160, 53) and small.mode == "RGBA"
    assert small.getpixel((0, 0))[3] == 0 and small.getpixel((80, 26))[3] == 255


def test_product_list_and_menu_answers_carry_the_image_urls_in_upload_order(shop: Shop) -> None:
    for sku in ("MENU-A", "MENU-B", "MENU-C"):
        shop.airline.product(sku)
    first = upload(shop.client, "MENU-A", picture("JPEG")).json()
    second = upload(shop.client, "MENU-A", picture("PNG")).json()
    upload(shop.client, "MENU-B", picture("WEBP"))
    assert [i["id"] for i in second["images"]] == [first["image_id"], second["image_id"]]
    product = shop.client.get("/v1/products/MENU-A").json()
    assert product["images"] == second["images"]
    listed = {p["sku"]: p for p in shop.client.get("/v1/products").json()["items"]}
    assert listed["MENU-A"]["images"] == product["images"]
    assert len(listed["MENU-B"]["images"]) == 1 and listed["MENU-C"]["images"] == []
    flight = shop.airline.flight(stock={"MENU-A": 5, "MENU-B": 5, "MENU-C": 5})
    menu = {item["sku"]: item for item in shop.client.get(f"/v1/flights/{flight['id']}/menu").json()["items"]}
    assert menu["MENU-A"]["images"] == [image["thumbnails"]["640"] for image in product["images"]]
    assert menu["MENU-B"]["images"] == [listed["MENU-B"]["images"][0]["thumbnails"]["640"]]
    assert menu["MENU-C"]["images"] == []
    for url in menu["MENU-A"]["images"]:
        assert max(opened(fetch(shop.client, url)).size) == 640


def _statements_for_cold_menu(shop: Shop, image_server: ExtraServer, skus: list[str]) -> int:
    flight = shop.airline.flight(stock={sku: 3 for sku in skus})
    engine = image_server.app.state.runtime.engine.sync_engine
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        menu = shop.client.get(f"/v1/flights/{flight['id']}/menu")
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert menu.status_code == 200, menu.text
    assert all(item["images"] for item in menu.json()["items"])
    return len([s for s in statements if s.lstrip().upper().startswith("SELECT")])


def test_a_menu_loads_all_its_images_with_one_query(shop: Shop, image_server: ExtraServer) -> None:
    skus = [f"N1-{n}" for n in range(6)]
    for sku in skus:
        shop.airline.product(sku)
        upload(shop.client, sku, picture("PNG", (64, 64)))
        upload(shop.client, sku, picture("PNG", (64, 64)))
    one = _statements_for_cold_menu(shop, image_server, skus[:1])
    six = _statements_for_cold_menu(shop, image_server, skus)
    assert one == six, f"statements grow with the items on the menu: {one} for one product, {six} for six"


def test_a_text_file_named_jpg_is_415_and_adds_nothing(shop: Shop) -> None:
    shop.airline.product("TEXT")
    response = upload(shop.client, "TEXT", b"hello, this is not a picture\n" * 20, filename="cat.jpg")
    assert_problem(response, 415, "unsupported_media_type")
    assert shop.client.get("/v1/products/TEXT").json()["images"] == []


def test_an_image_in_another_format_is_415(shop: Shop) -> None:
    shop.airline.product("GIF")
    assert_problem(upload(shop.client, "GIF", picture("GIF"), filename="a.png"), 415, "unsupported_media_type")
    assert_problem(upload(shop.client, "GIF", picture("BMP"), filename="a.webp"), 415, "unsupported_media_type")


def test_a_body_that_is_not_multipart_is_415_and_a_missing_or_second_file_is_422(shop: Shop) -> None:
    shop.airline.product("RAW")
    raw = shop.client.post("/v1/products/RAW/images", content=picture("PNG"), headers={"content-type": "image/png"})
    assert_problem(raw, 415, "unsupported_media_type")
    other_field = shop.client.post("/v1/products/RAW/images", files={"picture": ("a.png", picture("PNG"), "image/png")})
    assert_problem(other_field, 422, "validation_error")
    two = [("file", ("a.png", picture("PNG"), "image/png")), ("file", ("b.png", picture("PNG"), "image/png"))]
    assert_problem(shop.client.post("/v1/products/RAW/images", files=two), 422, "validation_error")
    assert shop.client.get("/v1/products/RAW").json()["images"] == []


def test_an_upload_over_the_byte_limit_is_413_and_one_at_the_limit_is_accepted(shop: Shop) -> None:
    shop.airline.product("HEAVY")
    png = picture("PNG")
    at_limit = png + b"\0" * (MAX_BYTES - len(png))  # Pillow ignores bytes after the image's end
    assert_problem(upload(shop.client, "HEAVY", at_limit + b"\0"), 413, "payload_too_large")
    assert shop.client.get("/v1/products/HEAVY").json()["images"] == []
    accepted = upload(shop.client, "HEAVY", at_limit)
    assert accepted.status_code == 201, accepted.text
    assert accepted.json()["images"][0]["bytes"] == MAX_BYTES


def test_a_streamed_upload_without_a_length_is_cut_off_at_the_limit_with_413(shop: Shop) -> None:
    shop.airline.product("STREAMED")
    boundary = "skycart-test-boundary"
    chunk = b"\xff" * 65536

    def body() -> Iterator[bytes]:
        yield (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.jpg"\r\n'
            "Content-Type: image/jpeg\r\n\r\n"
        ).encode()
        for _ in range(MAX_BYTES // len(chunk) + 1):
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    response = shop.client.post(
        "/v1/products/STREAMED/images",
        content=body(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert "content-length" not in response.request.headers, "the body went out chunked"
    assert_problem(response, 413, "payload_too_large")


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
def test_a_corrupt_image_is_422(shop: Shop, fmt: str) -> None:
    shop.airline.product("BROKEN")
    data = picture(fmt, (800, 600))
    truncated = data[: len(data) // 2]
    assert_problem(upload(shop.client, "BROKEN", truncated), 422, "validation_error")
    scrambled = data[:16] + bytes(b ^ 0x5A for b in data[16:])
    assert_problem(upload(shop.client, "BROKEN", scrambled), 422, "validation_error")
    assert shop.client.get("/v1/products/BROKEN").json()["images"] == []


@pytest.mark.parametrize("size", [(8000, 8000), (20000, 10000)], ids=["over_the_setting", "over_pillows_own_limit"])
def test_a_decompression_bomb_is_422_before_it_is_decoded(shop: Shop, size: tuple[int, int]) -> None:
    shop.airline.product("BOMB")
    bomb = flat_png(size)
    assert len(bomb) < 200_000, "a small file that would decode into a huge bitmap"
    problem = assert_problem(upload(shop.client, "BOMB", bomb), 422, "too_many_pixels")
    assert "pixels" in problem["detail"]
    assert shop.client.get("/v1/products/BOMB").json()["images"] == []


def test_another_airlines_product_images_are_not_found_and_untouched(make_shop: Any) -> None:
    owner, other = make_shop(), make_shop()
    owner.airline.product("PRIVATE")
    image_id = upload(owner.client, "PRIVATE", picture("JPEG")).json()["image_id"]
    before = owner.client.get("/v1/products/PRIVATE").json()
    assert_problem(upload(other.client, "PRIVATE", picture("JPEG")), 404, "not_found")
    assert_problem(other.client.delete(f"/v1/products/PRIVATE/images/{image_id}"), 404, "not_found")
    other.airline.product("PRIVATE")  # the same SKU of its own does not reach the owner's image either
    assert_problem(other.client.delete(f"/v1/products/PRIVATE/images/{image_id}"), 404, "not_found")
    assert other.client.get("/v1/products/PRIVATE").json()["images"] == []
    assert owner.client.get("/v1/products/PRIVATE").json() == before
    assert len(stored_files(owner, image_id)) == 3


def test_unknown_product_or_image_is_404(shop: Shop) -> None:
    assert_problem(upload(shop.client, "NOPE", picture("PNG")), 404, "not_found")
    shop.airline.product("KNOWN")
    assert_problem(shop.client.delete("/v1/products/KNOWN/images/01J00000000000000000000003"), 404, "not_found")
    assert_problem(shop.client.delete("/v1/products/KNOWN/images/not-an-id"), 422, "validation_error")


def test_delete_answers_204_and_removes_the_image_and_its_files(shop: Shop) -> None:
    shop.airline.product("TWO")
    first = upload(shop.client, "TWO", picture("JPEG")).json()
    second = upload(shop.client, "TWO", picture("PNG")).json()
    gone = first["images"][0]
    deleted = shop.client.delete(f"/v1/products/TWO/images/{gone['id']}")
    assert deleted.status_code == 204, deleted.text
    assert deleted.content == b""
    assert shop.client.get("/v1/products/TWO").json()["images"] == second["images"][1:]
    assert stored_files(shop, gone["id"]) == []
    assert fetch(shop.client, gone["url"]).status_code == 404
    assert fetch(shop.client, gone["thumbnails"]["640"]).status_code == 404
    assert_problem(shop.client.delete(f"/v1/products/TWO/images/{gone['id']}"), 404, "not_found")


def test_a_product_takes_at_most_ten_images(shop: Shop) -> None:
    shop.airline.product("GALLERY")
    ids = [upload(shop.client, "GALLERY", picture("PNG", (64, 64))).json()["image_id"] for _ in range(10)]
    problem = assert_problem(upload(shop.client, "GALLERY", picture("PNG", (64, 64))), 409, "too_many_images")
    assert problem["limit"] == 10
    assert [i["id"] for i in shop.client.get("/v1/products/GALLERY").json()["images"]] == ids
    assert shop.client.delete(f"/v1/products/GALLERY/images/{ids[0]}").status_code == 204
    again = upload(shop.client, "GALLERY", picture("PNG", (64, 64)))
    assert again.status_code == 201, again.text
    assert [i["id"] for i in again.json()["images"]] == [*ids[1:], again.json()["image_id"]]


def test_concurrent_uploads_never_exceed_the_limit_and_refused_ones_leave_no_files(shop: Shop) -> None:
    shop.airline.product("RUSH")
    with ThreadPoolExecutor(max_workers=12) as pool:
        answers = list(pool.map(lambda _: upload(shop.client, "RUSH", picture("PNG", (64, 64))), range(13)))
    created = [a.json()["image_id"] for a in answers if a.status_code == 201]
    refused = [a for a in answers if a.status_code != 201]
    assert len(created) == 10, [a.text for a in refused]
    for answer in refused:
        assert answer.status_code == 409 and answer.json()["code"] in ("too_many_images", "conflict"), answer.text
    assert sorted(i["id"] for i in shop.client.get("/v1/products/RUSH").json()["images"]) == sorted(created)
    product_folder = {Path(folder).parent for folder, _, names in os.walk(shop.assets_dir) if created[0] in folder}
    [folder] = product_folder
    assert sorted(p.name for p in folder.iterdir()) == sorted(created), "no files of refused uploads remain"


def test_deleting_a_product_removes_its_image_files(shop: Shop) -> None:
    shop.airline.product("DOOMED")
    image_id = upload(shop.client, "DOOMED", picture("JPEG")).json()["image_id"]
    assert shop.client.delete("/v1/products/DOOMED").status_code == 204
    deadline = time.monotonic() + 5
    while stored_files(shop, image_id) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert stored_files(shop, image_id) == []


def test_files_outside_the_assets_folder_are_not_served(shop: Shop, image_server: ExtraServer) -> None:
    secret = image_server.settings.assets_dir.parent / "secret.txt"
    secret.write_text("not for passengers")
    host, port = image_server.base_url.removeprefix("http://").split(":")
    for path in (
        "/assets/../secret.txt",
        "/assets/%2e%2e/secret.txt",
        "/assets/..%2fsecret.txt",
        "/assets//etc/passwd",
    ):
        with socket.create_connection((host, int(port)), timeout=10) as conn:
            conn.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
            answer = b""
            while chunk := conn.recv(65536):
                answer += chunk
        assert answer.split(b"\r\n", 1)[0].split()[1] in (b"400", b"404"), (path, answer[:200])
        assert b"not for passengers" not in answer and b"root:" not in answer


@pytest.mark.parametrize("key", ["../x.jpg", "a/../../x.jpg", "/etc/passwd", "a//b.jpg", "a\\b.jpg", "a/.hidden", ""])
def test_local_assets_refuse_keys_that_could_leave_the_folder(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValueError):
        LocalAssets(tmp_path).path(key)


def test_upload_time_of_a_camera_jpeg(shop: Shop) -> None:
    shop.airline.product("CAMERA")
    data = camera_jpeg()
    assert 2_000_000 < len(data) < 3_000_000
    timing = timed_uploads(shop.client, "CAMERA", data)
    print(f"\nupload of a {len(data) / 1e6:.1f} MB 3000x2000 JPEG, local folder: {timing}")
