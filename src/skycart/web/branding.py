"""An airline's look in the storefront, from its settings (`settings.branding`), made safe to put in a page.

`{"branding": {"colour": "#003366", "accent_colour": "#ffcc00", "logo_url": "https://.../logo.png"}}`;
text on each colour is black or white, whichever contrasts more (at least 4.5:1 for any colour).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from skycart.airlines.models import Airline

DEFAULT_COLOUR = "#1f3a5f"
DEFAULT_ACCENT = "#b3541e"
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")


@dataclass(frozen=True, slots=True)
class Brand:
    name: str
    colour: str
    on_colour: str
    accent: str
    on_accent: str
    logo_url: str | None


def _full_hex(colour: str) -> str:
    digits = colour[1:]
    return "#" + ("".join(c * 2 for c in digits) if len(digits) == 3 else digits).lower()


def _luminance(colour: str) -> float:
    """WCAG relative luminance of a #rrggbb colour."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(one: str, other: str) -> float:
    light, dark = sorted((_luminance(one), _luminance(other)), reverse=True)
    return (light + 0.05) / (dark + 0.05)


def text_on(colour: str) -> str:
    return "#ffffff" if contrast(colour, "#ffffff") >= contrast(colour, "#111111") else "#111111"


def _colour(value: object, default: str) -> str:
    return _full_hex(value) if isinstance(value, str) and _HEX.match(value) else default


def _logo(value: object) -> str | None:
    # An https URL or a path on this site; nothing that could run script or leave the page's origin rules.
    if not isinstance(value, str) or len(value) > 2000:
        return None
    if value.startswith("https://") or (value.startswith("/") and not value.startswith("//")):
        return value
    return None


def brand_of(airline: Airline) -> Brand:
    settings = (airline.settings or {}).get("branding") or {}
    colour = _colour(settings.get("colour") or settings.get("primary_colour"), DEFAULT_COLOUR)
    accent = _colour(settings.get("accent_colour"), DEFAULT_ACCENT)
    return Brand(
        name=airline.name,
        colour=colour,
        on_colour=text_on(colour),
        accent=accent,
        on_accent=text_on(accent),
        logo_url=_logo(settings.get("logo_url")),
    )
