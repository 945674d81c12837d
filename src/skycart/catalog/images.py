"""Product images: add, remove, and the URLs that product and menu answers carry.

The asset store (S3 or a folder) is not part of the database transaction, so adding and removing an
image own their units of work and order the two: files are stored before the row that names them is
committed (a refused or failed insert removes them again), and removed only after the row's deletion
is committed. A crash in between leaves at most files nothing refers to, never a row naming missing files.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from skycart.catalog import imaging, repository
from skycart.catalog.models import Product, ProductImage
from skycart.catalog.schemas import ImageOut, ProductImages, ProductOut
from skycart.catalog.service import product_out
from skycart.config import Settings
from skycart.errors import Conflict, NotFound, TooManyImages
from skycart.platform.assets import AssetStore
from skycart.platform.db import is_retryable, new_id, transaction
from skycart.platform.runtime import Runtime
from skycart.platform.tenancy import Tenant

log = logging.getLogger("skycart.catalog.images")

ORIGINAL = "original"
# The thumbnail a menu item shows.
MENU_VARIANT = str(imaging.THUMBNAIL_SIZES[0])


@dataclass(frozen=True, slots=True)
class ImageRules:
    max_images: int
    max_pixels: int

    @classmethod
    def from_settings(cls, settings: Settings) -> ImageRules:
        return cls(max_images=settings.max_images_per_product, max_pixels=settings.max_image_pixels)


def storage_key(tenant: Tenant, product_id: str, image_id: str, variant: str, extension: str) -> str:
    return f"airlines/{tenant.id}/products/{product_id}/{image_id}/{variant}.{extension}"


async def product_with_room(
    session: AsyncSession, *, tenant: Tenant, sku: str, max_images: int, lock: bool = False
) -> Product:
    """The caller's product, if it can take one more image (`lock`: and hold it until the transaction ends)."""
    product = await repository.by_sku(session, tenant, sku, lock=lock)
    if product is None:
        raise NotFound(f"product {sku} not found")
    count, _ = await repository.image_slots(session, tenant, product.id)
    if count >= max_images:
        raise TooManyImages(f"product {sku} has {count} images; at most {max_images} are allowed", limit=max_images)
    return product


async def add_image(
    sessions: async_sessionmaker[AsyncSession],
    assets: AssetStore,
    *,
    tenant: Tenant,
    product: Product,
    data: bytes,
    rules: ImageRules,
    workers: asyncio.Semaphore,
) -> ProductImages:
    """Check and thumbnail the upload, store its files, then record it as the product's last image."""
    async with workers:  # decoding is CPU- and memory-heavy: a few at a time per process
        prepared = await asyncio.to_thread(imaging.prepare, data, max_pixels=rules.max_pixels)
    image_id = new_id()
    files = {ORIGINAL: (prepared.original, prepared.content_type, prepared.extension)}
    content_type, extension = imaging.THUMBNAIL_TYPE
    files.update({str(size): (webp, content_type, extension) for size, webp in prepared.thumbnails.items()})
    keys = {variant: storage_key(tenant, product.id, image_id, variant, ext) for variant, (_, _, ext) in files.items()}
    try:
        outcomes = await asyncio.gather(
            *(assets.put(keys[variant], body, kind) for variant, (body, kind, _) in files.items()),
            return_exceptions=True,
        )
        failed = next((outcome for outcome in outcomes if isinstance(outcome, BaseException)), None)
        if failed is not None:
            raise failed
        async with transaction(sessions) as session:
            current = await product_with_room(
                session, tenant=tenant, sku=product.sku, max_images=rules.max_images, lock=True
            )
            if current.id != product.id:
                raise Conflict(f"product {product.sku} was replaced during the upload; upload again")
            _, last = await repository.image_slots(session, tenant, product.id)
            row = ProductImage(
                id=image_id,
                airline_id=tenant.id,
                product_id=product.id,
                position=last + 1,
                content_type=prepared.content_type,
                width=prepared.width,
                height=prepared.height,
                size_bytes=len(prepared.original),
                storage_keys=keys,
            )
            await repository.add_image(session, row)
            images = (await repository.images_of(session, tenant, [product.id]))[product.id]
    except (IntegrityError, OperationalError) as exc:
        await discard_files(assets, keys.values())
        if isinstance(exc, OperationalError) and not is_retryable(exc):
            raise
        raise Conflict(
            "another change to this product's images came first; retry", headers={"Retry-After": "1"}
        ) from exc
    except BaseException:
        await discard_files(assets, keys.values())
        raise
    views = await image_views(assets, images)
    return ProductImages(sku=product.sku, image_id=image_id, images=views)


async def delete_image(
    sessions: async_sessionmaker[AsyncSession], assets: AssetStore, *, tenant: Tenant, sku: str, image_id: str
) -> None:
    """Remove one image of the caller's product; its files go once the removal is committed."""
    async with transaction(sessions) as session:
        product = await repository.by_sku(session, tenant, sku)
        if product is None:
            raise NotFound(f"product {sku} not found")
        image = await repository.image(session, tenant, product.id, image_id)
        if image is None:
            raise NotFound(f"image {image_id} not found")
        await repository.delete_image(session, tenant, image.id)
    await discard_files(assets, image.storage_keys.values())


async def discard_files(assets: AssetStore, keys: Iterable[str]) -> None:
    keys = list(keys)
    try:
        await assets.delete(keys)
    except Exception:
        # Unreferenced files cost storage, not correctness: log them for a sweep and carry on.
        log.exception("asset_discard_failed", extra={"keys": keys})


async def image_views(assets: AssetStore, images: Sequence[ProductImage]) -> list[ImageOut]:
    urls = await assets.urls([key for image in images for key in image.storage_keys.values()])
    return [
        ImageOut(
            id=image.id,
            url=urls[image.storage_keys[ORIGINAL]],
            thumbnails={variant: urls[key] for variant, key in image.storage_keys.items() if variant != ORIGINAL},
            width=image.width,
            height=image.height,
            content_type=image.content_type,
            bytes=image.size_bytes,
        )
        for image in images
    ]


async def product_views(
    session: AsyncSession, assets: AssetStore, *, tenant: Tenant, products: Sequence[Product]
) -> list[ProductOut]:
    """Product answers with their images: one query for all the products' images, one URL batch."""
    by_product = await repository.images_of(session, tenant, [p.id for p in products])
    views = await image_views(assets, [image for p in products for image in by_product.get(p.id, [])])
    by_id = {view.id: view for view in views}
    return [product_out(p, images=[by_id[image.id] for image in by_product.get(p.id, [])]) for p in products]


async def menu_images(
    session: AsyncSession, assets: AssetStore, *, tenant: Tenant, product_ids: Sequence[str]
) -> dict[str, list[str]]:
    """Product id -> the URLs a menu shows (its 640 px thumbnails), for a whole menu at once."""
    by_product = await repository.images_of(session, tenant, product_ids)
    keys = {pid: [image.storage_keys[MENU_VARIANT] for image in images] for pid, images in by_product.items()}
    urls = await assets.urls([key for group in keys.values() for key in group])
    return {pid: [urls[key] for key in group] for pid, group in keys.items()}


async def room_for_image(runtime: Runtime, *, tenant: Tenant, sku: str) -> Product:
    """The product an upload goes to: 404, or 409 when it has its most images, before a byte is read."""
    async with transaction(runtime.sessions, write=False) as session:
        return await product_with_room(
            session, tenant=tenant, sku=sku, max_images=runtime.settings.max_images_per_product
        )


async def upload_image(runtime: Runtime, *, tenant: Tenant, product: Product, data: bytes) -> ProductImages:
    """`add_image` with the running app's image store, limits and decoding slots: what the API and the
    console both call for an upload."""
    return await add_image(
        runtime.sessions,
        runtime.asset_store(),
        tenant=tenant,
        product=product,
        data=data,
        rules=ImageRules.from_settings(runtime.settings),
        workers=runtime.image_workers,
    )
