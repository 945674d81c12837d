from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, BackgroundTasks, Depends, Path, Query, Request, Response, status

from skycart.airlines.auth import AirlineTenant
from skycart.catalog import images, importing, service
from skycart.catalog.models import Product
from skycart.catalog.schemas import ImportResult, ProductCreate, ProductImages, ProductOut, ProductReplace
from skycart.errors import PayloadTooLarge, ValidationFailed, problem_responses
from skycart.platform.assets import AssetStore
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.uploads import read_file_field
from skycart.platform.validation import SKU_PATTERN

router = APIRouter(
    route_class=StrictJsonRoute, prefix="/v1", tags=["catalog"], responses=problem_responses(401, 403, 422)
)
SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN)]
ImageId = Annotated[str, Path(min_length=26, max_length=26, pattern=r"^[0-9A-HJKMNP-TV-Z]{26}$")]


def _assets(request: Request) -> AssetStore:
    return get_runtime(request).asset_store()


Assets = Annotated[AssetStore, Depends(_assets)]


@router.post("/products", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_product(body: ProductCreate, tenant: AirlineTenant, session: WriteSession) -> ProductOut:
    return service.product_out(await service.create_product(session, tenant=tenant, data=body))


@router.get("/products")
async def list_products(
    tenant: AirlineTenant,
    session: ReadSession,
    assets: Assets,
    limit: Limit = 100,
    cursor: Cursor = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    active: bool | None = None,
) -> Page[ProductOut]:
    found = await service.list_products(
        session, tenant=tenant, after=decode_cursor(cursor), limit=limit, category=category, active=active
    )
    return page_of(found, await images.product_views(session, assets, tenant=tenant, products=found.rows))


@router.get("/products/{sku}", responses=problem_responses(404))
async def get_product(sku: SkuPath, tenant: AirlineTenant, session: ReadSession, assets: Assets) -> ProductOut:
    product = await service.get_product(session, tenant=tenant, sku=sku)
    return (await images.product_views(session, assets, tenant=tenant, products=[product]))[0]


@router.put("/products/{sku}", responses=problem_responses(404))
async def replace_product(
    sku: SkuPath, body: ProductReplace, tenant: AirlineTenant, session: WriteSession, assets: Assets
) -> ProductOut:
    if body.sku is not None and body.sku != sku:
        raise ValidationFailed(f"body sku {body.sku!r} differs from the path's {sku!r}")
    product = await service.replace_product(session, tenant=tenant, sku=sku, data=body)
    return (await images.product_views(session, assets, tenant=tenant, products=[product]))[0]


@router.delete("/products/{sku}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409))
async def delete_product(
    sku: SkuPath, tenant: AirlineTenant, session: WriteSession, assets: Assets, after_commit: BackgroundTasks
) -> Response:
    image_files = await service.delete_product(session, tenant=tenant, sku=sku)
    # Background tasks run after the response, so after the session has committed the deletion.
    after_commit.add_task(images.discard_files, assets, image_files)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": {
                            "type": "string",
                            "format": "binary",
                            "contentMediaType": "application/octet-stream",
                            "description": "A JPEG, PNG or WebP image (the content decides, not the name)",
                        }
                    },
                },
                "encoding": {"file": {"contentType": "image/jpeg, image/png, image/webp"}},
            }
        },
    }
}


async def _product_for_image(sku: SkuPath, tenant: AirlineTenant, request: Request) -> Product:
    """The product to add to: 404 (or 409 when full) before a byte of the upload is read."""
    return await images.room_for_image(get_runtime(request), tenant=tenant, sku=sku)


async def _image_file(request: Request, _product: Annotated[Product, Depends(_product_for_image)]) -> bytes:
    return await read_file_field(request, field="file", max_bytes=get_runtime(request).settings.max_image_bytes)


@router.post(
    "/products/{sku}/images",
    status_code=status.HTTP_201_CREATED,
    openapi_extra=_IMAGE_BODY,
    responses=problem_responses(404, 409, 413, 415),
    summary="Add an image (JPEG, PNG or WebP) to a product; 160 and 640 px WebP thumbnails are made",
)
async def add_product_image(
    sku: SkuPath,
    tenant: AirlineTenant,
    product: Annotated[Product, Depends(_product_for_image)],
    data: Annotated[bytes, Depends(_image_file)],
    request: Request,
) -> ProductImages:
    return await images.upload_image(get_runtime(request), tenant=tenant, product=product, data=data)


@router.delete(
    "/products/{sku}/images/{image_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404)
)
async def delete_product_image(sku: SkuPath, image_id: ImageId, tenant: AirlineTenant, request: Request) -> Response:
    runtime = get_runtime(request)
    await images.delete_image(runtime.sessions, runtime.asset_store(), tenant=tenant, sku=sku, image_id=image_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


_IMPORT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {"schema": {"type": "array", "items": {"$ref": "#/components/schemas/ProductCreate"}}},
            "text/csv": {"schema": {"type": "string"}},
        },
    }
}


async def _upload(request: Request, _tenant: AirlineTenant) -> importing.Upload:
    """The import body, read and validated after authentication and before any transaction opens."""
    settings = get_runtime(request).settings
    media_type = request.headers.get("content-type", importing.JSON_TYPE).split(";")[0].strip().lower()
    importing.check_media_type(media_type)
    body = await _bounded_body(request, settings.max_request_bytes)
    return importing.parse(body, media_type, settings.max_import_rows)


@router.post(
    "/products:import",
    openapi_extra=_IMPORT_BODY,
    responses=problem_responses(409, 413, 415),
    summary="Create or replace many products at once, all or nothing",
)
async def import_products(
    tenant: AirlineTenant, upload: Annotated[importing.Upload, Depends(_upload)], session: WriteSession
) -> ImportResult:
    # `upload` comes before `session`: a slow upload must not hold the write transaction (SQLite's lock).
    return await service.import_products(session, tenant=tenant, rows=upload.rows, row_errors=upload.errors)


async def _bounded_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
