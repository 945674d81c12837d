"""Web tests: HTTP-level helpers (sign-in, CSRF tokens) and, for the browser tests, Debian's Chromium
driven by Playwright against a server of their own on a fresh SQLite database."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from skycart.airlines import service as airline_service
from skycart.cli import run_in_transaction
from skycart.config import Settings
from tests.conftest import LiveServer, app_server, scratch_database, service_missing

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screenshots"
_CSRF = re.compile(r'name="csrf_token" value="([0-9a-f]{64})"')


def csrf_token(html: str) -> str:
    """The CSRF token a page gave its forms."""
    found = _CSRF.search(html)
    assert found, "the page has no form with a CSRF token"
    return found.group(1)


@contextmanager
def sign_in(server: LiveServer, key: str) -> Iterator[httpx.Client]:
    """A cookie-holding client signed in to the console with `key`, as a browser would be."""
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        form = client.get("/console/sign-in")
        assert form.status_code == 200, form.text
        answer = client.post("/console/sign-in", data={"api_key": key, "csrf_token": csrf_token(form.text)})
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/console"
        yield client


def png(colour: tuple[int, int, int], size: int = 64) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (size, size), colour).save(out, "PNG")
    return out.getvalue()


def operator_key_for(settings: Settings) -> str:
    async def _create(session: Any) -> str:
        _key, plain = await airline_service.issue_key(session, role=airline_service.ROLE_OPERATOR, airline=None)
        return plain

    return run_in_transaction(settings, _create)


@pytest.fixture(scope="session")
def web_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A server of the browser tests' own on SQLite: the charts show exactly the airlines these tests create."""
    assets = tmp_path_factory.mktemp("web-assets")
    with scratch_database("sqlite", tmp_path_factory.mktemp("web")) as url, app_server(url, "sqlite", assets) as live:
        yield live


@pytest.fixture(scope="session")
def web_operator_key(web_server: LiveServer) -> str:
    return operator_key_for(web_server.settings)


@pytest.fixture(scope="module")
def chromium(web_operator_key: str) -> Iterator[Any]:
    """Debian's Chromium, headless, driven by Playwright (which never downloads a browser here).

    Playwright's sync API keeps an event loop running in this thread, where asyncio.run() then fails: so the
    browser lives for one module only, and the operator key (made with asyncio.run) is made before it starts.
    """
    if not CHROMIUM.exists():
        service_missing(f"Chromium at {CHROMIUM} (make installs it: apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@dataclass
class Tab:
    """A browser page that records every console error and uncaught exception it meets."""

    page: Any
    errors: list[str] = field(default_factory=list)

    def screenshot(self, name: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        assert path.stat().st_size > 1000, f"{path} is empty"
        return path

    def assert_no_console_errors(self) -> None:
        assert self.errors == [], self.errors


def open_tab(browser: Any, *, phone: bool = False) -> Tab:
    viewport = {"width": 390, "height": 844} if phone else {"width": 1280, "height": 900}
    context = browser.new_context(viewport=viewport, device_scale_factor=1, is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(10_000)
    tab = Tab(page)
    page.on("console", lambda message: tab.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: tab.errors.append(str(error)))
    return tab


# Run in the page: controls without a label, and text whose contrast with its background is under WCAG AA.
AUDIT_JS = """
() => {
  const problems = [];
  const visible = (el) => { const s = getComputedStyle(el); const r = el.getBoundingClientRect();
    return s.visibility !== 'hidden' && s.display !== 'none' && r.width > 0 && r.height > 0; };
  for (const el of document.querySelectorAll('input, select, textarea, button')) {
    if (el.type === 'hidden' || !visible(el)) continue;
    const named = (el.labels && el.labels.length) || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby')
      || ((el.tagName === 'BUTTON') && el.textContent.trim());
    if (!named) problems.push('no label: ' + el.outerHTML.slice(0, 120));
  }
  const rgb = (c) => (c.match(/[0-9.]+/g) || []).map(Number);
  const channel = (v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; };
  const lum = ([r, g, b]) => 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b);
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length >= 3 && (c.length < 4 || c[3] > 0.5)) return c;
    }
    return [255, 255, 255];
  };
  for (const el of document.querySelectorAll('body *')) {
    if (el.closest('svg, .plot') || !visible(el)) continue;
    const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
    if (!own) continue;
    const s = getComputedStyle(el);
    const [a, b] = [lum(rgb(s.color)), lum(background(el))].sort((x, y) => y - x);
    const ratio = (a + 0.05) / (b + 0.05);
    const large = parseFloat(s.fontSize) >= 24 || (parseFloat(s.fontSize) >= 18.66 && Number(s.fontWeight) >= 700);
    const text = el.textContent.trim().slice(0, 40);
    if (ratio < (large ? 3 : 4.5)) problems.push(`contrast ${ratio.toFixed(2)}: ${el.tagName} "${text}"`);
  }
  return problems;
}
"""


def audit(tab: Tab) -> None:
    """Every visible control is labelled and all text meets WCAG AA contrast on this page."""
    problems = tab.page.evaluate(AUDIT_JS)
    assert problems == [], problems
