from __future__ import annotations

from fastapi import APIRouter, Request, Response, status

from skycart.airlines import service
from skycart.airlines.auth import AirlineTenant, OperatorKey, forget_key
from skycart.airlines.schemas import AirlineCreate, AirlineOut, AirlineUpdate, KeyCreate, KeyCreated
from skycart.errors import problem_responses
from skycart.platform.jsonbody import StrictJsonRoute
from skycart.platform.pagination import Cursor, Limit, Page, decode_cursor, page_of
from skycart.platform.sessions import ReadSession, WriteSession
from skycart.platform.validation import AirlineCode

admin = APIRouter(
    route_class=StrictJsonRoute, prefix="/admin", tags=["operator"], responses=problem_responses(401, 403, 422)
)
v1 = APIRouter(route_class=StrictJsonRoute, prefix="/v1", tags=["airline"], responses=problem_responses(401, 403))


def _out(airline: object) -> AirlineOut:
    return AirlineOut.model_validate(airline, from_attributes=True)


@admin.post("/airlines", status_code=status.HTTP_201_CREATED, responses=problem_responses(409))
async def create_airline(body: AirlineCreate, session: WriteSession, _op: OperatorKey) -> AirlineOut:
    return _out(await service.create_airline(session, data=body))


@admin.get("/airlines")
async def list_airlines(
    session: ReadSession, _op: OperatorKey, limit: Limit = 100, cursor: Cursor = None
) -> Page[AirlineOut]:
    found = await service.list_airlines(session, after=decode_cursor(cursor), limit=limit)
    return page_of(found, [_out(r) for r in found.rows])


@admin.get("/airlines/{code}", responses=problem_responses(404))
async def get_airline(code: AirlineCode, session: ReadSession, _op: OperatorKey) -> AirlineOut:
    return _out(await service.get_airline(session, code=code))


@admin.patch("/airlines/{code}", responses=problem_responses(404))
async def update_airline(code: AirlineCode, body: AirlineUpdate, session: WriteSession, _op: OperatorKey) -> AirlineOut:
    return _out(await service.update_airline(session, code=code, patch=body))


@admin.post("/airlines/{code}/keys", status_code=status.HTTP_201_CREATED, responses=problem_responses(404))
async def create_airline_key(
    code: AirlineCode, session: WriteSession, _op: OperatorKey, body: KeyCreate | None = None
) -> KeyCreated:
    airline = await service.get_airline(session, code=code)
    key, plain = await service.issue_key(
        session, role=service.ROLE_AIRLINE, airline=airline, name=body.name if body else ""
    )
    return KeyCreated(
        id=key.id,
        key=plain,
        role="airline",
        airline=airline.code,
        prefix=key.prefix,
        name=key.name,
        created_at=key.created_at,
    )


@admin.delete("/keys/{key_id}", status_code=status.HTTP_204_NO_CONTENT, responses=problem_responses(404))
async def revoke_key(key_id: str, request: Request, session: WriteSession, _op: OperatorKey) -> Response:
    await service.revoke_key(session, key_id=key_id)
    forget_key(request, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@v1.get("/airline")
async def own_airline(tenant: AirlineTenant, session: ReadSession) -> AirlineOut:
    return _out(await service.get_airline(session, code=tenant.code))
