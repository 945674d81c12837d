"""Where product images live: S3 in production, a local folder in embedded mode.

Both stores take keys the catalog builds (`airlines/{airline_id}/products/{product_id}/{image_id}/{variant}.{ext}`)
and hand out URLs a passenger's device can load without an API key:

- `S3Assets`: presigned GET URLs (valid `SKYCART_PRESIGN_SECONDS`), or `SKYCART_ASSETS_BASE_URL` + key when a CDN
  fronts the bucket. boto3 blocks, so every network call runs in a worker thread; the client is made once at start-up.
  The bucket belongs to CloudFormation: nothing here creates it.
- `LocalAssets`: files under `SKYCART_ASSETS_DIR`, served by the app itself under `/assets/` (Starlette's StaticFiles,
  which refuses paths outside the folder).

Objects are immutable (every upload gets a new image id), so a URL may be reused for as long as it stays valid.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol

from cachetools import TTLCache

from skycart.config import Settings
from skycart.platform import aws

log = logging.getLogger("skycart.assets")

LOCAL_PREFIX = "/assets"
# One segment of a key: so no empty, "." or ".." segments, no backslashes, nothing absolute.
_SEGMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# The longest a URL handed out stays in the URL cache, as a share of its validity.
_REUSE_SHARE = 0.5


class AssetStore(Protocol):
    async def put(self, key: str, data: bytes, content_type: str) -> None: ...

    async def delete(self, keys: Iterable[str]) -> None: ...

    async def urls(self, keys: Sequence[str]) -> dict[str, str]: ...

    def close(self) -> None: ...


def check_key(key: str) -> str:
    if not all(_SEGMENT.fullmatch(segment) for segment in key.split("/")):
        raise ValueError(f"not a safe asset key: {key!r}")
    return key


class LocalAssets:
    """Files in a folder; URLs relative to the app (or under a base URL), served at `/assets/`."""

    def __init__(self, root: Path, *, base_url: str | None = None) -> None:
        self.root = root.resolve()
        self.base_url = (base_url or LOCAL_PREFIX).rstrip("/")

    def path(self, key: str) -> Path:
        path = (self.root / check_key(key)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"asset key leaves the assets folder: {key!r}")
        return path

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(self._write, self.path(key), data)

    async def delete(self, keys: Iterable[str]) -> None:
        paths = [self.path(key) for key in keys]
        if paths:
            await asyncio.to_thread(self._remove, paths)

    async def urls(self, keys: Sequence[str]) -> dict[str, str]:
        return {key: f"{self.base_url}/{check_key(key)}" for key in keys}

    def close(self) -> None:
        pass

    @staticmethod
    def _write(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed, so a reader never sees half a file.
        fd, partial = tempfile.mkstemp(dir=path.parent, prefix=".partial-")
        try:
            with os.fdopen(fd, "wb") as file:
                file.write(data)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise

    def _remove(self, paths: list[Path]) -> None:
        for path in paths:
            path.unlink(missing_ok=True)
        # An image's own folder goes with its last file; shared parents stay, a concurrent upload may be using them.
        for folder in {path.parent for path in paths}:
            with contextlib.suppress(OSError):
                folder.rmdir()


class S3Assets:
    """Objects in one S3 bucket through a boto3 client made once per process."""

    def __init__(
        self,
        client: Any,
        bucket: str,
        *,
        presign_seconds: int,
        base_url: str | None = None,
        url_cache_size: int = 50_000,
    ) -> None:
        self.client = client
        self.bucket = bucket
        self.presign_seconds = presign_seconds
        self.base_url = base_url.rstrip("/") if base_url else None
        # Presigning is local but not free (and may refresh credentials over the network): reuse a URL for
        # half its validity, so every URL handed out stays valid for at least the other half.
        self._presigned: TTLCache[str, str] = TTLCache(maxsize=url_cache_size, ttl=presign_seconds * _REUSE_SHARE)

    async def put(self, key: str, data: bytes, content_type: str) -> None:
        await asyncio.to_thread(
            self.client.put_object,
            Bucket=self.bucket,
            Key=check_key(key),
            Body=data,
            ContentType=content_type,
            CacheControl="public, max-age=31536000, immutable",
        )

    async def delete(self, keys: Iterable[str]) -> None:
        objects = [{"Key": check_key(key)} for key in keys]
        for start in range(0, len(objects), 1000):
            batch = objects[start : start + 1000]
            answer = await asyncio.to_thread(
                self.client.delete_objects, Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            for error in answer.get("Errors", []):
                log.warning("asset_delete_failed", extra={"key": error.get("Key"), "error": error.get("Code")})
        for item in objects:
            self._presigned.pop(item["Key"], None)

    async def urls(self, keys: Sequence[str]) -> dict[str, str]:
        if self.base_url:
            return {key: f"{self.base_url}/{check_key(key)}" for key in keys}
        found = {key: url for key in keys if (url := self._presigned.get(key)) is not None}
        missing = [key for key in dict.fromkeys(keys) if key not in found]
        if missing:
            signed = await asyncio.to_thread(self._presign, missing)
            self._presigned.update(signed)
            found.update(signed)
        return found

    def close(self) -> None:
        self.client.close()

    def _presign(self, keys: list[str]) -> dict[str, str]:
        return {
            key: self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=self.presign_seconds
            )
            for key in keys
        }


def s3_client(settings: Settings) -> Any:
    """The process's one S3 client (thread-safe; shared by every request)."""
    from botocore.config import Config

    config = Config(
        signature_version="s3v4",
        max_pool_connections=32,
        retries={"mode": "standard", "max_attempts": 3},
        # A custom endpoint (moto, LocalStack, MinIO) is one host: bucket names go in the path.
        s3={"addressing_style": "path" if settings.aws_endpoint_url else "auto"},
    )
    return aws.client("s3", settings, config=config)


def assets_for(settings: Settings) -> LocalAssets | S3Assets:
    """S3 when a bucket is configured, else the local folder."""
    if settings.assets_bucket:
        return S3Assets(
            s3_client(settings),
            settings.assets_bucket,
            presign_seconds=settings.presign_seconds,
            base_url=settings.assets_base_url,
        )
    return LocalAssets(settings.assets_dir, base_url=settings.assets_base_url)
