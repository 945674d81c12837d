from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status

from skycart.airlines.auth import AirlineTenant
from skycart.catalog import importing, repository, service
from skycart.catalog.schemas import ImportResult, ProductCreate, ProductOut, ProductReplace
from skycart.errors import PayloadTooLarge, ValidationFailed, problem_responses
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.runtime import get_runtime
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.validation import SKU_PATTERN

router = APIRouter(prefix="/v1", tags=["catalog"], responses=problem_responses(401, 403, 422))
SkuPath = Annotated[str, Path(min_length=1, max_length=64, pattern=SKU_PATTERN)]


@router.post("/products", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_product(body: ProductCreate, tenant: AirlineTenant, session: WriteSession) -> ProductOut:
    return service.product_out(await service.create_product(session, tenant=tenant, data=body))


@router.get("/products")
async def list_products(
    tenant: AirlineTenant,
    session: ReadSession,
    limit: Limit = 100,
    cursor: Cursor = None,
    category: Annotated[str | None, Query(max_length=100)] = None,
    active: bool | None = None,
) -> Page[ProductOut]:
    rows = await repository.page(
        session, tenant, after=decode_cursor(cursor), limit=limit + 1, category=category, active=active
    )
    items = [service.product_out(p) for p in rows]
    return page_of(items, limit=limit, key=rows[limit - 1].sku if len(rows) > limit else None)


@router.get("/products/{sku}", responses=problem_responses(404))
async def get_product(sku: SkuPath, tenant: AirlineTenant, session: ReadSession) -> ProductOut:
    return service.product_out(await service.get_product(session, tenant=tenant, sku=sku))


@router.put("/products/{sku}", responses=problem_responses(404))
async def replace_product(
    sku: SkuPath, body: ProductReplace, tenant: AirlineTenant, session: WriteSession
) -> ProductOut:
    if body.sku is not None and body.sku != sku:
        raise ValidationFailed(f"body sku {body.sku!r} differs from the path's {sku!r}")
    return service.product_out(await service.replace_product(session, tenant=tenant, sku=sku, data=body))


@router.delete("/products/{sku}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404, 409))
async def delete_product(sku: SkuPath, tenant: AirlineTenant, session: WriteSession) -> Response:
    await service.delete_product(session, tenant=tenant, sku=sku)
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
