"""The passenger storefront of one flight: the airline's brand, languages and currencies, the menu, a
basket, and checkout through the payment provider. Every page works without JavaScript."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Path, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from skycart.airlines import service as airlines
from skycart.airlines.models import Airline
from skycart.billing import service as billing
from skycart.errors import DomainError, FeatureNotInPlan, NotFound
from skycart.flights import service as flights
from skycart.flights.schemas import FlightId, FlightOut, Menu
from skycart.orders import checkout
from skycart.orders import service as orders
from skycart.orders.schemas import OrderCreate
from skycart.platform.runtime import get_runtime
from skycart.platform.scope import AIRLINE
from skycart.platform.tenancy import Tenant
from skycart.platform.validation import AirlineCode
from skycart.web import basket, branding, csrf, i18n
from skycart.web.deps import check_origin
from skycart.web.pages import HtmlRoute, render, secure_cookies, see_other, templates, unit_of_work

router = APIRouter(prefix="/shop", route_class=HtmlRoute, include_in_schema=False)

FEATURE = "storefront"
OrderId = Annotated[str, Path(min_length=1, max_length=26)]
Choice = Annotated[str | None, Query(max_length=16)]


@dataclass
class Shop:
    """Everything a storefront page of one flight is drawn from."""

    airline: Airline
    tenant: Tenant
    flight: FlightOut
    menu: Menu
    locale: str
    currency: str
    csrf_token: str
    seed: str
    new_seed: bool

    @property
    def path(self) -> str:
        return basket.shop_path(self.airline.code, self.flight.id)


async def _open_shop(request: Request, code: str, flight_id: str, lang: str | None, currency: str | None) -> Shop:
    """The airline (its plan must include the storefront), the flight and its menu in one language and currency."""
    runtime = get_runtime(request)
    async with unit_of_work(request, write=False) as session:
        airline = await airlines.get_airline(session, code=code)
        tenant = airline.tenant
        flight = flights.flight_out(await flights.get_flight(session, tenant=tenant, flight_id=flight_id))
    request.scope[AIRLINE] = airline.code
    plan = await billing.plan_terms(runtime, tenant)
    if FEATURE not in plan.features:
        raise FeatureNotInPlan(f"the {plan.code} plan does not include the storefront", feature=FEATURE)
    if runtime.airline_guard is not None:  # the passengers' requests count against the airline's package
        await runtime.airline_guard(request, tenant)
    locale = lang if lang in airline.locales else airline.default_locale
    currency = currency if currency in airline.currencies else airline.currencies[0]
    # The same cache entry the API's menu uses for this language and currency.
    body = await flights.cached_menu_json(runtime, tenant=tenant, flight_id=flight_id, locale=locale, currency=currency)
    seed, new_seed = csrf.seed(request)
    return Shop(
        airline=airline,
        tenant=tenant,
        flight=flight,
        menu=Menu.model_validate_json(body),
        locale=locale,
        currency=currency,
        csrf_token=csrf.token_for(seed),
        seed=seed,
        new_seed=new_seed,
    )


def _categories(menu: Menu) -> list[tuple[str, list[Any]]]:
    grouped: dict[str, list[Any]] = {}
    for item in menu.items:
        grouped.setdefault(item.category, []).append(item)
    return list(grouped.items())


def _context(request: Request, shop: Shop, quantities: dict[str, int], **extra: Any) -> dict[str, Any]:
    t = i18n.translator(shop.locale)
    return {
        "shop": shop,
        "t": t,
        "lang": shop.locale,
        "money": lambda amount, currency=shop.currency: i18n.money(amount, currency, shop.locale),
        "languages": [(code, i18n.language_name(code)) for code in shop.airline.locales],
        "categories": _categories(shop.menu),
        "basket": basket.priced(quantities, shop.menu),
        "brand": branding.brand_of(shop.airline),
        "csrf_token": shop.csrf_token,
        "csrf_field": csrf.FIELD,
        "idempotency_key": uuid.uuid4().hex,
        "sandbox": get_runtime(request).payments.name == "sandbox",
        "error": None,
        "seat": "",
    } | extra


def _finish(request: Request, shop: Shop, response: Response) -> Response:
    if shop.new_seed:
        csrf.keep_seed(response, shop.seed, secure=secure_cookies(request))
    return response


def _back(shop: Shop, anchor: str = "") -> str:
    return f"{shop.path}?lang={shop.locale}&currency={shop.currency}{anchor}"


async def _checked_form(request: Request, shop: Shop) -> FormData:
    check_origin(request)
    form = await request.form(max_files=0, max_fields=50)
    csrf.check(request.cookies.get(csrf.SEED_COOKIE), form.get(csrf.FIELD))
    return form


@router.get("/{airline}/{flight_id}")
async def shop_page(
    request: Request, airline: AirlineCode, flight_id: FlightId, lang: Choice = None, currency: Choice = None
) -> Response:
    shop = await _open_shop(request, airline, flight_id, lang, currency)
    notice = i18n.translator(shop.locale)("added") if request.query_params.get("added") else None
    response = render(request, "shop/menu.html", _context(request, shop, basket.read(request), notice=notice))
    return _finish(request, shop, response)


@router.post("/{airline}/{flight_id}/basket")
async def change_basket(request: Request, airline: AirlineCode, flight_id: FlightId) -> Response:
    """Add to or set a basket line; answers JSON (the basket's new HTML) to the page's script, else redirects."""
    form = await request.form(max_files=0, max_fields=50)
    shop = await _open_shop(request, airline, flight_id, _text(form, "lang"), _text(form, "currency"))
    await _checked_form(request, shop)
    sku = _text(form, "sku") or ""
    quantity = 0 if form.get("remove") else _int(form.get("quantity"), default=1)
    quantities = basket.read(request)
    if any(item.sku == sku for item in shop.menu.items):
        quantities = basket.changed(quantities, sku=sku, quantity=quantity, add=form.get("mode") != "set")
    added = form.get("mode") != "set"
    if "application/json" in request.headers.get("accept", ""):
        context = _context(request, shop, quantities)
        html = _partial("shop/_basket.html", request, context)
        priced = context["basket"]
        message = context["t"]("added") if added else ""
        response: Response = JSONResponse({"count": priced.count, "basket_html": html, "message": message})
    else:
        response = see_other(_back(shop, "&added=1#basket" if added else "#basket"))
    basket.write(response, quantities, path=shop.path, secure=secure_cookies(request))
    return response


@router.post("/{airline}/{flight_id}/checkout")
async def pay(request: Request, airline: AirlineCode, flight_id: FlightId) -> Response:
    """Place the basket's order through the payment provider, exactly once per rendered checkout form."""
    form = await request.form(max_files=0, max_fields=50)
    shop = await _open_shop(request, airline, flight_id, _text(form, "lang"), _text(form, "currency"))
    await _checked_form(request, shop)
    # What the passenger saw: the basket's lines still on the menu (a product withdrawn meanwhile drops out).
    lines = basket.priced(basket.read(request), shop.menu).lines
    quantities = {line.item.sku: line.quantity for line in lines}
    seat = (_text(form, "seat") or "").strip().upper()
    if not quantities:
        return see_other(_back(shop, "#basket"))
    key = _text(form, "idempotency_key") or uuid.uuid4().hex
    status, error = 201, None
    try:
        data = OrderCreate(
            flight_id=shop.flight.id,
            seat=seat,
            currency=shop.currency,
            items=[{"sku": sku, "quantity": qty} for sku, qty in quantities.items()],
            payment={"token": _text(form, "token") or ""},
            passenger={"age_confirmed": form.get("age_confirmed") == "on"},
        )
        answer = await checkout.place_order_once(
            get_runtime(request),
            tenant=shop.tenant,
            airline=airlines.AirlineFacts.of(shop.airline),
            key=key[:255],
            data=data,
        )
        status = answer.status
        body = orjson.loads(answer.body)
        error = None if status < 400 else body.get("code", "validation_error")
    except ValidationError:
        status, error = 422, "validation_error"
    except DomainError as exc:
        status, error = exc.status, exc.code
    if error is None:
        placed = see_other(f"{shop.path}/orders/{body['id']}?lang={shop.locale}&currency={shop.currency}")
        basket.write(placed, {}, path=shop.path, secure=secure_cookies(request))
        return placed
    context = _context(request, shop, quantities, error=i18n.error_text(shop.locale, error), seat=seat)
    response = render(request, "shop/menu.html", context, status=status)
    basket.write(response, quantities, path=shop.path, secure=secure_cookies(request))
    return _finish(request, shop, response)


@router.get("/{airline}/{flight_id}/orders/{order_id}")
async def order_page(
    request: Request,
    airline: AirlineCode,
    flight_id: FlightId,
    order_id: OrderId,
    lang: Choice = None,
    currency: Choice = None,
) -> Response:
    """The confirmation, and later the order's status (delivered, cancelled), for the passenger who placed it."""
    shop = await _open_shop(request, airline, flight_id, lang, currency)
    async with unit_of_work(request, write=False) as session:
        order = await orders.get_order(session, tenant=shop.tenant, order_id=order_id)
    if order.flight_id != shop.flight.id:
        raise NotFound(f"order {order_id} not found")
    names = {item.sku: item.name for item in shop.menu.items}
    context = _context(request, shop, basket.read(request), order=order, names=names)
    context["money"] = lambda amount, currency=order.currency: i18n.money(amount, currency, shop.locale)
    return _finish(request, shop, render(request, "shop/order.html", context))


def _partial(template: str, request: Request, context: dict[str, Any]) -> str:
    return templates.get_template(template).render(request=request, **context)


def _text(form: FormData, name: str) -> str | None:
    value = form.get(name)
    return value[:255] if isinstance(value, str) else None


def _int(value: object, *, default: int) -> int:
    try:
        return int(str(value))
    except ValueError:
        return default
