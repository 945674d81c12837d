"""Product images in S3 (moto server): objects under the airline's prefix, presigned URLs that fetch them.

The bucket is made here with boto3, standing in for CloudFormation; the app only reads and writes objects.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import httpx
import pytest
from moto.server import ThreadedMotoServer

from skycart.config import Settings
from skycart.platform.assets import S3Assets
from tests.catalog.images_support import (
    ULID_PATTERN,
    ExtraServer,
    camera_jpeg,
    opened,
    picture,
    serve,
    timed_uploads,
    upload,
)
from tests.conftest import AirlineHandle, LiveServer, _free_port, assert_problem

REGION = "eu-central-1"


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    port = _free_port()
    with pytest.MonkeyPatch.context() as env:
        # The app's boto3 client finds credentials the standard way; moto accepts any.
        env.setenv("AWS_ACCESS_KEY_ID", "testing")
        env.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        env.delenv("AWS_PROFILE", raising=False)
        env.delenv("AWS_SESSION_TOKEN", raising=False)
        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's request log
        moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        moto.start()
        try:
            yield f"http://127.0.0.1:{port}"
        finally:
            moto.stop()


@dataclass
class Bucketed:
    server: ExtraServer
    bucket: str
    s3: Any


@pytest.fixture(scope="module")
def s3_server(server: LiveServer, moto_endpoint: str) -> Iterator[Bucketed]:
    s3 = boto3.client("s3", endpoint_url=moto_endpoint, region_name=REGION)
    bucket = f"skycart-images-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": REGION})
    settings = Settings(
        database_url=server.settings.database_url,
        log_level="WARNING",
        metering_flush_seconds=0.3,
        access_log=False,
        assets_bucket=bucket,
        aws_endpoint_url=moto_endpoint,
        aws_region=REGION,
        assets_base_url=None,
    )
    with serve(settings) as extra:
        yield Bucketed(extra, bucket, s3)


@pytest.fixture
def s3_client(airline: AirlineHandle, s3_server: Bucketed) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=s3_server.server.base_url, headers={"X-Api-Key": airline.key}, timeout=30) as client:
        yield client


def objects_of(s3_server: Bucketed, airline: AirlineHandle) -> dict[str, Any]:
    listed = s3_server.s3.list_objects_v2(Bucket=s3_server.bucket, Prefix=f"airlines/{airline.data['id']}/")
    return {item["Key"]: item for item in listed.get("Contents", [])}


def test_upload_puts_the_original_and_both_thumbnails_in_the_bucket_under_the_airline(
    airline: AirlineHandle, s3_client: httpx.Client, s3_server: Bucketed
) -> None:
    airline.product("S3-SNAP")
    data = picture("JPEG", (1600, 1200))
    response = upload(s3_client, "S3-SNAP", data)
    assert response.status_code == 201, response.text
    image_id = response.json()["image_id"]
    keys = sorted(objects_of(s3_server, airline))
    prefix = rf"airlines/{airline.data['id']}/products/{ULID_PATTERN}/{image_id}/"
    assert len(keys) == 3 and all(re.fullmatch(prefix + r"(original\.jpg|640\.webp|160\.webp)", k) for k in keys), keys
    stored = {key.rsplit("/", 1)[1]: s3_server.s3.get_object(Bucket=s3_server.bucket, Key=key) for key in keys}
    assert stored["original.jpg"]["Body"].read() == data
    assert stored["original.jpg"]["ContentType"] == "image/jpeg"
    assert stored["640.webp"]["ContentType"] == stored["160.webp"]["ContentType"] == "image/webp"
    assert "immutable" in stored["640.webp"]["CacheControl"]


def test_presigned_urls_fetch_the_original_and_thumbnails_without_an_api_key(
    airline: AirlineHandle, s3_client: httpx.Client
) -> None:
    airline.product("S3-URL")
    data = picture("PNG", (1000, 500))
    image = upload(s3_client, "S3-URL", data).json()["images"][0]
    query = parse_qs(urlsplit(image["url"]).query)
    assert query["X-Amz-Expires"] == ["3600"] and "X-Amz-Signature" in query
    original = httpx.get(image["url"], timeout=30)
    assert original.status_code == 200 and original.content == data
    for size, url in image["thumbnails"].items():
        assert opened(httpx.get(url, timeout=30)).size == (int(size), int(size) // 2)
    assert s3_client.get("/v1/products/S3-URL").json()["images"] == [image], "a URL is reused while it is fresh"


def test_the_menu_carries_presigned_thumbnail_urls(airline: AirlineHandle, s3_client: httpx.Client) -> None:
    airline.product("S3-MENU")
    image = upload(s3_client, "S3-MENU", picture("WEBP")).json()["images"][0]
    flight = airline.flight(stock={"S3-MENU": 4})
    [item] = s3_client.get(f"/v1/flights/{flight['id']}/menu").json()["items"]
    assert item["images"] == [image["thumbnails"]["640"]]
    assert max(opened(httpx.get(item["images"][0], timeout=30)).size) == 640


def test_deleting_an_image_or_its_product_removes_the_objects(
    airline: AirlineHandle, s3_client: httpx.Client, s3_server: Bucketed
) -> None:
    airline.product("S3-GONE")
    first = upload(s3_client, "S3-GONE", picture("JPEG")).json()["image_id"]
    second = upload(s3_client, "S3-GONE", picture("PNG")).json()["image_id"]
    assert len(objects_of(s3_server, airline)) == 6
    assert s3_client.delete(f"/v1/products/S3-GONE/images/{first}").status_code == 204
    assert {key.split("/")[-2] for key in objects_of(s3_server, airline)} == {second}
    assert s3_client.delete("/v1/products/S3-GONE").status_code == 204
    deadline = time.monotonic() + 5
    while objects_of(s3_server, airline) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert objects_of(s3_server, airline) == {}


def test_a_refused_upload_leaves_no_object(
    airline: AirlineHandle, s3_client: httpx.Client, s3_server: Bucketed
) -> None:
    airline.product("S3-NONE")
    assert_problem(upload(s3_client, "S3-NONE", b"GIF89a not really"), 415, "unsupported_media_type")
    assert_problem(upload(s3_client, "S3-NOPE", picture("PNG")), 404, "not_found")
    assert objects_of(s3_server, airline) == {}


class _CountingClient:
    def __init__(self) -> None:
        self.signed = 0

    def generate_presigned_url(self, operation: str, Params: dict[str, str], ExpiresIn: int) -> str:
        self.signed += 1
        return f"https://bucket.example/{Params['Key']}?sig={self.signed}&expires={ExpiresIn}"


def test_urls_come_from_the_cdn_base_url_when_one_is_set() -> None:
    client = _CountingClient()
    cdn = S3Assets(client, "bucket", presign_seconds=600, base_url="https://cdn.example/img/")
    key = "airlines/A/products/P/I/640.webp"
    assert asyncio.run(cdn.urls([key])) == {key: "https://cdn.example/img/airlines/A/products/P/I/640.webp"}
    assert client.signed == 0


def test_a_presigned_url_is_reused_instead_of_signed_again() -> None:
    client = _CountingClient()
    assets = S3Assets(client, "bucket", presign_seconds=600)
    first = asyncio.run(assets.urls(["a/1.webp", "a/2.webp", "a/1.webp"]))
    second = asyncio.run(assets.urls(["a/2.webp", "a/1.webp"]))
    assert first == second and client.signed == 2
    assert first["a/1.webp"].endswith("expires=600")


def test_upload_time_of_a_camera_jpeg_to_s3(
    airline: AirlineHandle, s3_client: httpx.Client, s3_server: Bucketed
) -> None:
    airline.product("S3-CAMERA")
    data = camera_jpeg()
    timing = timed_uploads(s3_client, "S3-CAMERA", data)
    assert len(objects_of(s3_server, airline)) == 4 * 3
    print(f"\nupload of a {len(data) / 1e6:.1f} MB 3000x2000 JPEG to S3 (moto): {timing}")
