"""The passenger's basket: SKU quantities in a cookie scoped to one flight's shop.

The basket holds no price and no promise: the menu prices it, and the order checks stock, age and
limits. A forged cookie can only ask for what the checkout form could ask for anyway.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from fastapi import Request, Response

from skycart.flights.schemas import Menu, MenuItem
from skycart.money import to_decimal_string, to_minor

COOKIE = "skycart_basket"
MAX_LINES = 50
MAX_QUANTITY = 99
_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]{0,63})\*([0-9]{1,2})$")


def shop_path(airline: str, flight_id: str) -> str:
    return f"/shop/{airline}/{flight_id}"


def read(request: Request) -> dict[str, int]:
    """SKU -> quantity from the cookie; anything malformed is left out."""
    found: dict[str, int] = {}
    for part in request.cookies.get(COOKIE, "").split("~")[:MAX_LINES]:
        match = _LINE.match(part)
        if match and 0 < int(match.group(2)) <= MAX_QUANTITY:
            found[match.group(1)] = int(match.group(2))
    return found


def write(response: Response, quantities: dict[str, int], *, path: str, secure: bool) -> None:
    lines = [f"{sku}*{qty}" for sku, qty in quantities.items() if 0 < qty <= MAX_QUANTITY][:MAX_LINES]
    if not lines:
        response.delete_cookie(COOKIE, path=path, httponly=True, secure=secure, samesite="lax")
        return
    response.set_cookie(COOKIE, "~".join(lines), httponly=True, secure=secure, samesite="lax", path=path)


def changed(quantities: dict[str, int], *, sku: str, quantity: int, add: bool) -> dict[str, int]:
    """The basket with `quantity` more of `sku` (add) or exactly `quantity` of it (0 removes)."""
    updated = dict(quantities)
    wanted = (updated.get(sku, 0) + quantity) if add else quantity
    wanted = max(0, min(wanted, MAX_QUANTITY))
    if wanted:
        updated[sku] = wanted
    else:
        updated.pop(sku, None)
    return updated


@dataclass
class BasketLine:
    item: MenuItem
    quantity: int
    line_total: str


@dataclass
class PricedBasket:
    currency: str
    lines: list[BasketLine] = field(default_factory=list)
    total: str = "0"

    @property
    def min_age(self) -> int | None:
        """The highest minimum age of the items in the basket, if any has one."""
        ages = [line.item.min_age for line in self.lines if line.item.min_age]
        return max(ages) if ages else None

    @property
    def count(self) -> int:
        return sum(line.quantity for line in self.lines)


def priced(quantities: dict[str, int], menu: Menu) -> PricedBasket:
    """The basket's lines that are on the menu, priced in the menu's currency."""
    items = {item.sku: item for item in menu.items}
    basket = PricedBasket(currency=menu.currency)
    total = 0
    for sku, quantity in quantities.items():
        item = items.get(sku)
        if item is None:
            continue
        line_minor = to_minor(item.price, menu.currency) * quantity
        total += line_minor
        basket.lines.append(BasketLine(item, quantity, to_decimal_string(line_minor, menu.currency)))
    basket.total = to_decimal_string(total, menu.currency)
    return basket
