"""Demo data: three airlines with their catalogs, today's flights and loaded stock.

Seeding is idempotent: existing airlines, products and flights are kept; each run revokes the
previous demo keys and prints new ones (plain keys exist only when created).
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import NotRequired, TypedDict

from rich.console import Console
from rich.progress import Progress
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skycart.airlines import service as airlines
from skycart.airlines.models import ApiKey
from skycart.airlines.schemas import AirlineCreate
from skycart.billing import plans
from skycart.billing.schemas import PlanAssign
from skycart.catalog import service as catalog
from skycart.catalog.schemas import ProductCreate
from skycart.flights import repository as flight_repo
from skycart.flights import service as flights
from skycart.flights.schemas import FlightCreate, InventoryPut, StockLine
from skycart.platform.db import utcnow
from skycart.platform.tenancy import Tenant

DEMO_KEY_NAME = "demo"

# (sku, category, English name, German name, price in EUR cents, min_age, restrictions)
ITEMS: list[tuple[str, str, str, str, int, int | None, list[str]]] = [
    ("WATER-50", "drinks", "Still water 0.5 l", "Stilles Wasser 0,5 l", 300, None, []),
    ("SPARKLING-50", "drinks", "Sparkling water 0.5 l", "Mineralwasser 0,5 l", 300, None, []),
    ("COLA-33", "drinks", "Cola 0.33 l", "Cola 0,33 l", 350, None, []),
    ("COLA-ZERO-33", "drinks", "Cola Zero 0.33 l", "Cola Zero 0,33 l", 350, None, []),
    ("ORANGE-25", "drinks", "Orange juice 0.25 l", "Orangensaft 0,25 l", 350, None, []),
    ("APPLE-25", "drinks", "Apple juice 0.25 l", "Apfelsaft 0,25 l", 350, None, []),
    ("COFFEE", "hot-drinks", "Coffee", "Kaffee", 350, None, []),
    ("CAPPUCCINO", "hot-drinks", "Cappuccino", "Cappuccino", 420, None, []),
    ("TEA", "hot-drinks", "Black tea", "Schwarzer Tee", 300, None, []),
    ("HOT-CHOC", "hot-drinks", "Hot chocolate", "Heiße Schokolade", 400, None, []),
    ("BEER-33", "alcohol", "Lager beer 0.33 l", "Pils 0,33 l", 550, 18, ["alcohol"]),
    ("WHEAT-50", "alcohol", "Wheat beer 0.5 l", "Weißbier 0,5 l", 650, 18, ["alcohol"]),
    ("RED-WINE", "alcohol", "Red wine 0.187 l", "Rotwein 0,187 l", 750, 18, ["alcohol"]),
    ("WHITE-WINE", "alcohol", "White wine 0.187 l", "Weißwein 0,187 l", 750, 18, ["alcohol"]),
    ("PROSECCO", "alcohol", "Prosecco 0.2 l", "Prosecco 0,2 l", 900, 18, ["alcohol"]),
    ("GIN-TONIC", "alcohol", "Gin and tonic", "Gin Tonic", 950, 18, ["alcohol"]),
    ("WHISKY", "alcohol", "Scotch whisky 4 cl", "Scotch Whisky 4 cl", 800, 18, ["alcohol"]),
    ("PRETZEL", "snacks", "Salted pretzel", "Laugenbrezel", 350, None, []),
    ("CRISPS", "snacks", "Potato crisps", "Kartoffelchips", 300, None, []),
    ("NUTS", "snacks", "Roasted almonds", "Geröstete Mandeln", 400, None, []),
    ("CHOC-BAR", "snacks", "Chocolate bar", "Schokoriegel", 280, None, []),
    ("COOKIES", "snacks", "Butter cookies", "Butterkekse", 300, None, []),
    ("FRUIT-CUP", "snacks", "Fresh fruit cup", "Frischer Obstbecher", 450, None, []),
    ("SANDWICH-HAM", "meals", "Ham and cheese sandwich", "Schinken-Käse-Sandwich", 750, None, []),
    ("SANDWICH-VEG", "meals", "Mozzarella and tomato sandwich", "Mozzarella-Tomaten-Sandwich", 750, None, []),
    ("WRAP-CHICKEN", "meals", "Chicken wrap", "Hähnchen-Wrap", 850, None, []),
    ("PASTA", "meals", "Pasta with tomato sauce", "Pasta mit Tomatensoße", 1100, None, []),
    ("CURRY", "meals", "Vegetable curry with rice", "Gemüsecurry mit Reis", 1200, None, []),
    ("SALAD", "meals", "Greek salad", "Griechischer Salat", 950, None, []),
    ("NOODLES", "meals", "Instant noodle cup", "Instant-Nudeln", 500, None, []),
    ("HEADPHONES", "comfort", "In-ear headphones", "In-Ear-Kopfhörer", 500, None, []),
    ("BLANKET", "comfort", "Fleece blanket", "Fleecedecke", 1500, None, []),
    ("PILLOW", "comfort", "Neck pillow", "Nackenkissen", 1800, None, []),
    ("EYE-MASK", "comfort", "Sleep mask", "Schlafmaske", 600, None, []),
    ("PERFUME", "duty-free", "Eau de parfum 50 ml", "Eau de Parfum 50 ml", 6900, None, ["duty_free"]),
    ("WATCH", "duty-free", "Pilot watch", "Fliegeruhr", 19900, None, ["duty_free"]),
    ("SUNGLASSES", "duty-free", "Sunglasses", "Sonnenbrille", 8900, None, ["duty_free"]),
    ("COGNAC-70", "duty-free", "Cognac VSOP 0.7 l", "Cognac VSOP 0,7 l", 4900, 18, ["alcohol", "duty_free"]),
    (
        "CIGARETTES",
        "duty-free",
        "Cigarettes, carton of 200",
        "Zigaretten, Stange mit 200",
        5200,
        18,
        ["tobacco", "duty_free"],
    ),
    ("MODEL-PLANE", "souvenirs", "Model aircraft 1:200", "Flugzeugmodell 1:200", 3500, None, []),
]


class _AirlineSpec(TypedDict):
    code: str
    name: str
    plan: NotRequired[str]
    currencies: list[str]
    default_locale: str
    locales: list[str]
    rates: dict[str, float]  # per currency, to convert the EUR prices
    routes: list[tuple[str, str, str, bool]]  # flight number, origin, destination, international


AIRLINES: list[_AirlineSpec] = [
    {
        "code": "SKA",
        "name": "SkyCart Air",
        "currencies": ["EUR", "USD"],
        "default_locale": "en",
        "locales": ["en", "de"],
        "rates": {"EUR": 1.0, "USD": 1.1},
        "routes": [("SKA100", "FRA", "JFK", True), ("SKA204", "FRA", "MUC", False), ("SKA310", "MUC", "LHR", True)],
    },
    {
        "code": "NRD",
        "name": "Nordic Wings",
        "plan": "premium",  # its passenger storefront (/shop/NRD/...) is open
        "currencies": ["SEK", "EUR"],
        "default_locale": "sv",
        "locales": ["sv", "en"],
        "rates": {"SEK": 11.5, "EUR": 1.0},
        "routes": [("NRD12", "ARN", "GOT", False), ("NRD401", "ARN", "CPH", True), ("NRD77", "ARN", "KEF", True)],
    },
    {
        "code": "SAK",
        "name": "Sakura Airways",
        "currencies": ["JPY", "USD"],
        "default_locale": "ja",
        "locales": ["ja", "en"],
        "rates": {"JPY": 160.0, "USD": 1.1},
        "routes": [("SAK8", "HND", "CTS", False), ("SAK21", "HND", "LAX", True), ("SAK35", "NRT", "SIN", True)],
    },
]

SWEDISH = {
    "WATER-50": "Vatten 0,5 l",
    "COFFEE": "Kaffe",
    "TEA": "Te",
    "BEER-33": "Öl 0,33 l",
    "SANDWICH-HAM": "Skinksmörgås",
    "BLANKET": "Filt",
}
JAPANESE = {
    "WATER-50": "水 0.5L",
    "COFFEE": "コーヒー",
    "TEA": "紅茶",
    "BEER-33": "ビール 0.33L",
    "NOODLES": "カップ麺",
    "BLANKET": "ブランケット",
}


def _price(cents_eur: int, rate: float, currency: str) -> str:
    if currency == "JPY":
        return str(int(round(cents_eur / 100 * rate, -1)))
    return f"{round(cents_eur * rate / 10) * 10 / 100:.2f}"


def _products(spec: _AirlineSpec) -> list[ProductCreate]:
    out = []
    for sku, category, en, de, cents, min_age, restrictions in ITEMS:
        names = {"en": en}
        if "de" in spec["locales"]:
            names["de"] = de
        if "sv" in spec["locales"] and sku in SWEDISH:
            names["sv"] = SWEDISH[sku]
        if "ja" in spec["locales"] and sku in JAPANESE:
            names["ja"] = JAPANESE[sku]
        out.append(
            ProductCreate(
                sku=sku,
                category=category,
                name=names,
                description={"en": f"{en}, served at your seat."},
                prices={cur: _price(cents, spec["rates"][cur], cur) for cur in spec["currencies"]},
                min_age=min_age,
                restrictions=restrictions,
            )
        )
    return out


async def _flights(session: AsyncSession, tenant: Tenant, spec: _AirlineSpec) -> None:
    today = utcnow().date()
    for index, (number, origin, destination, international) in enumerate(spec["routes"]):
        departure = datetime.combine(today, time(6 + 4 * index, 30), UTC)
        existing = await flight_repo.page(session, tenant, after=None, limit=500, departure_date=today)
        if any(f.flight_number == number and f.origin == origin for f in existing):
            continue
        flight = await flights.create_flight(
            session,
            tenant=tenant,
            data=FlightCreate(
                flight_number=number,
                departure_date=today,
                origin=origin,
                destination=destination,
                scheduled_departure=departure + timedelta(hours=0),
                international=international,
            ),
        )
        lines = [StockLine(sku=sku, quantity=5 if cents > 3000 else 24) for sku, _c, _e, _d, cents, _a, _r in ITEMS]
        await flights.load_inventory(session, tenant=tenant, flight_id=flight.id, data=InventoryPut(items=lines))


async def _revoke_old_demo_keys(session: AsyncSession) -> None:
    now = utcnow()
    for key in (
        await session.execute(select(ApiKey).where(ApiKey.name == DEMO_KEY_NAME, ApiKey.revoked_at.is_(None)))
    ).scalars():
        key.revoked_at = now


async def seed(session: AsyncSession, *, progress_console: Console | None = None) -> list[tuple[str, str]]:
    """Create (or keep) the demo data; returns (label, plain key) pairs, operator first."""
    await _revoke_old_demo_keys(session)
    _key, operator_key = await airlines.issue_key(
        session, role=airlines.ROLE_OPERATOR, airline=None, name=DEMO_KEY_NAME
    )
    keys = [("operator", operator_key)]
    with Progress(console=progress_console, transient=True) as progress:
        task = progress.add_task("seeding demo airlines", total=len(AIRLINES))
        for spec in AIRLINES:
            airline = await airlines.repository.get_by_code(session, spec["code"])
            if airline is None:
                airline = await airlines.create_airline(
                    session,
                    data=AirlineCreate(
                        code=spec["code"],
                        name=spec["name"],
                        currencies=spec["currencies"],
                        default_locale=spec["default_locale"],
                        locales=spec["locales"],
                        settings={"seat_limits": {"alcohol": 2, "tobacco": 1}},
                    ),
                )
                if "plan" in spec:
                    # From now on: the current month is open whatever the grace period.
                    await plans.assign_plan(
                        session, airline_code=airline.code, data=PlanAssign(plan=spec["plan"]), grace_hours=0
                    )
            tenant = Tenant(id=airline.id, code=airline.code)
            await catalog.import_products(session, tenant=tenant, rows=_products(spec), row_errors=[])
            await _flights(session, tenant, spec)
            _key, plain = await airlines.issue_key(
                session, role=airlines.ROLE_AIRLINE, airline=airline, name=DEMO_KEY_NAME
            )
            keys.append((airline.code, plain))
            progress.advance(task)
    return keys
