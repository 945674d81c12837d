"""The console over plain HTTP: sessions, CSRF, expiry and what each kind of key may see."""

from __future__ import annotations

import hashlib
import time
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import select, update

from skycart.app import create_app
from skycart.cli import run_in_transaction
from skycart.config import Settings
from skycart.platform.db import utcnow
from skycart.web.models import WebSession
from tests.browser.conftest import csrf_token, sign_in
from tests.conftest import AirlineHandle, LiveServer


def _session_cookie(response: httpx.Response) -> str:
    cookies = [v for k, v in response.headers.multi_items() if k == "set-cookie" and v.startswith("skycart_session=")]
    assert len(cookies) == 1, response.headers
    return cookies[0]


def test_sign_in_sets_an_httponly_samesite_cookie_without_secure_over_http(
    server: LiveServer, operator_key: str
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        form = client.get("/console/sign-in")
        answer = client.post("/console/sign-in", data={"api_key": operator_key, "csrf_token": csrf_token(form.text)})
    assert answer.status_code == 303
    cookie = _session_cookie(answer).lower()
    assert "httponly" in cookie
    assert "samesite=lax" in cookie
    assert "path=/" in cookie
    assert "secure" not in cookie


def test_session_cookie_is_secure_when_the_browser_came_over_https(server: LiveServer, operator_key: str) -> None:
    https = {"X-Forwarded-Proto": "https"}
    with httpx.Client(base_url=server.base_url, headers=https) as client:
        form = client.get("/console/sign-in")
        seed = form.headers["set-cookie"]
        assert "; secure" in seed.lower(), "the form's CSRF seed is Secure over HTTPS too"
        answer = client.post(
            "/console/sign-in",
            data={"api_key": operator_key, "csrf_token": csrf_token(form.text)},
            headers={"Cookie": seed.split(";")[0]},  # a browser on HTTPS sends Secure cookies; this test speaks HTTP
        )
    assert answer.status_code == 303
    assert "; secure" in _session_cookie(answer).lower()


def test_session_id_is_stored_only_as_a_hash(server: LiveServer, operator_key: str) -> None:
    with sign_in(server, operator_key) as client:
        token = client.cookies["skycart_session"]

    async def _ids(session: Any) -> list[str]:
        return list((await session.execute(select(WebSession.id))).scalars())

    ids = run_in_transaction(server.settings, _ids)
    assert hashlib.sha256(token.encode()).hexdigest() in ids
    assert token not in ids


def test_unknown_key_is_refused_and_gets_no_session(server: LiveServer) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        form = client.get("/console/sign-in")
        answer = client.post("/console/sign-in", data={"api_key": "sk_op_nope", "csrf_token": csrf_token(form.text)})
        assert answer.status_code == 401
        assert "Unknown or revoked API key" in answer.text
        assert "skycart_session" not in client.cookies
        assert client.get("/console").status_code == 303


def test_sign_in_form_posted_without_its_csrf_token_is_refused(server: LiveServer, operator_key: str) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        client.get("/console/sign-in")
        answer = client.post("/console/sign-in", data={"api_key": operator_key})
        assert answer.status_code == 403
        assert "skycart_session" not in client.cookies


def test_console_form_posted_without_its_csrf_token_changes_nothing(
    server: LiveServer, operator_key: str, admin: httpx.Client, airline: AirlineHandle
) -> None:
    with sign_in(server, operator_key) as client:
        refused = client.post(f"/console/airlines/{airline.code}/plan", data={"plan": "basic"})
        forged = client.post(f"/console/airlines/{airline.code}/plan", data={"plan": "basic", "csrf_token": "0" * 64})
    assert refused.status_code == 403
    assert forged.status_code == 403
    assert admin.get(f"/admin/airlines/{airline.code}/plans").json()[-1]["plan"]["code"] == "premium"


def test_form_posted_from_another_site_is_refused_even_with_a_token(
    server: LiveServer, operator_key: str, admin: httpx.Client, airline: AirlineHandle
) -> None:
    with sign_in(server, operator_key) as client:
        token = csrf_token(client.get(f"/console/airlines/{airline.code}").text)
        answer = client.post(
            f"/console/airlines/{airline.code}/plan",
            data={"plan": "basic", "csrf_token": token},
            headers={"Origin": "https://attacker.example"},
        )
    assert answer.status_code == 403
    assert admin.get(f"/admin/airlines/{airline.code}/plans").json()[-1]["plan"]["code"] == "premium"


def test_console_without_a_session_sends_the_browser_to_sign_in(server: LiveServer) -> None:
    answer = httpx.get(f"{server.base_url}/console/flights?after=X")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/console/sign-in?next=/console/flights%3Fafter%3DX"


def test_expired_session_sends_the_browser_to_sign_in(server: LiveServer, operator_key: str) -> None:
    with sign_in(server, operator_key) as client:
        assert client.get("/console").status_code == 200
        session_id = hashlib.sha256(client.cookies["skycart_session"].encode()).hexdigest()

        async def _expire(session: Any) -> None:
            past = utcnow() - timedelta(seconds=1)
            await session.execute(update(WebSession).where(WebSession.id == session_id).values(expires_at=past))

        run_in_transaction(server.settings, _expire)
        answer = client.get("/console")
    assert answer.status_code == 303
    assert answer.headers["location"].startswith("/console/sign-in")


def test_signed_out_session_cannot_be_replayed(server: LiveServer, operator_key: str) -> None:
    with sign_in(server, operator_key) as client:
        stolen = client.cookies["skycart_session"]
        page = client.get("/console")
        out = client.post("/console/sign-out", data={"csrf_token": csrf_token(page.text)})
        assert out.status_code == 303
        assert out.headers["location"] == "/console/sign-in?notice=signed-out"
    replay = httpx.get(f"{server.base_url}/console", cookies={"skycart_session": stolen})
    assert replay.status_code == 303


def test_revoking_a_key_ends_its_console_sessions(
    server: LiveServer, admin: httpx.Client, airline: AirlineHandle
) -> None:
    issued = admin.post(f"/admin/airlines/{airline.code}/keys", json={"name": "console"}).json()
    with sign_in(server, issued["key"]) as client:
        assert client.get("/console").status_code == 200
        assert admin.delete(f"/admin/keys/{issued['id']}").status_code == 204
        assert client.get("/console").status_code == 303


def test_airline_session_gets_403_on_every_operator_page(
    server: LiveServer, make_airline: Any, airline: AirlineHandle
) -> None:
    other = make_airline()
    with sign_in(server, airline.key) as client:
        token = csrf_token(client.get("/console").text)
        for code in (airline.code, other.code):
            assert client.get(f"/console/airlines/{code}").status_code == 403
            assert client.get(f"/console/airlines/{code}/statements/{utcnow():%Y-%m}").status_code == 403
            assert (
                client.post(f"/console/airlines/{code}/plan", data={"plan": "basic", "csrf_token": token}).status_code
                == 403
            )
            assert client.post(f"/console/airlines/{code}/keys", data={"csrf_token": token}).status_code == 403
        revoke = client.post(f"/console/keys/{'0' * 26}/revoke", data={"csrf_token": token})
    assert revoke.status_code == 403


def test_airline_session_cannot_see_or_change_another_airlines_rows(
    server: LiveServer, make_airline: Any, airline: AirlineHandle
) -> None:
    other = make_airline()
    other.product("SECRET-1")
    flight = other.flight(stock={"SECRET-1": 3})
    with sign_in(server, airline.key) as client:
        page = client.get("/console")
        token = csrf_token(page.text)
        assert other.code not in page.text
        assert client.get(f"/console/flights/{flight['id']}").status_code == 404
        assert (
            client.post("/console/catalog/SECRET-1", data={"price.EUR": "1.00", "csrf_token": token}).status_code == 404
        )
        assert "SECRET-1" not in client.get("/console/catalog").text
        assert flight["id"] not in client.get("/console/flights").text
    assert other.client.get("/v1/products/SECRET-1").json()["prices"]["EUR"] == "4.50"


def test_operator_session_gets_403_on_airline_pages(server: LiveServer, operator_key: str) -> None:
    with sign_in(server, operator_key) as client:
        assert client.get("/console/catalog").status_code == 403
        assert client.get("/console/flights").status_code == 403


def test_operator_changes_a_plan_issues_a_key_shown_once_and_revokes_it(
    server: LiveServer, operator_key: str, admin: httpx.Client, airline: AirlineHandle
) -> None:
    with sign_in(server, operator_key) as client:
        token = csrf_token(client.get(f"/console/airlines/{airline.code}").text)
        changed = client.post(f"/console/airlines/{airline.code}/plan", data={"plan": "standard", "csrf_token": token})
        assert changed.status_code == 303
        assert "The plan was changed." in client.get(changed.headers["location"]).text
        assert admin.get(f"/admin/airlines/{airline.code}/plans").json()[-1]["plan"]["code"] == "standard"

        issued = client.post(f"/console/airlines/{airline.code}/keys", data={"name": "tablets", "csrf_token": token})
        assert issued.status_code == 200
        assert issued.headers["cache-control"] == "no-store"
        plain = issued.text.split('id="new-key" class="mono" type="text" readonly value="')[1].split('"')[0]
        assert plain.startswith("sk_al_")
        assert server.client(plain).get("/v1/plan").status_code == 200
        again = client.get(f"/console/airlines/{airline.code}").text
        assert plain not in again, "a key is shown once"
        key_id = again.split('<tr id="key-')[1].split('"')[0]
        revoked = client.post(f"/console/keys/{key_id}/revoke", data={"csrf_token": token})
        assert revoked.status_code == 303
    deadline = time.monotonic() + 5
    while server.client(plain).get("/v1/plan").status_code != 401:
        assert time.monotonic() < deadline, "the revoked key still works after 5 s"
        time.sleep(0.2)


def test_statement_downloads_as_csv(server: LiveServer, operator_key: str, airline: AirlineHandle) -> None:
    month = f"{utcnow():%Y-%m}"
    with sign_in(server, operator_key) as client:
        page = client.get(f"/console/airlines/{airline.code}/statements/{month}")
        csv = client.get(f"/console/airlines/{airline.code}/statements/{month}?format=csv")
    assert page.status_code == 200
    assert f"Statement {airline.code} {month}" in page.text
    assert csv.headers["content-type"].startswith("text/csv")
    assert csv.headers["content-disposition"] == f'attachment; filename="statement-{airline.code}-{month}.csv"'
    assert csv.text.splitlines()[0].startswith("airline,month,item,plan")


def test_statement_page_shows_a_closed_month_as_final_and_late_facts_as_adjustments(
    server: LiveServer, operator_key: str, make_airline: Any, admin: httpx.Client
) -> None:
    from tests.billing.test_billing_periods import _late_sale_airline
    from tests.billing.usage_data import closed_month, label

    old, _ = closed_month()
    airline, flight, departs = _late_sale_airline(make_airline, server)
    sale = {
        "client_id": "console-late-1",
        "sold_at": (departs + timedelta(hours=2)).isoformat(),
        "currency": "EUR",
        "items": [{"sku": "MEAL", "quantity": 2}],
        "payment": {"method": "cash"},
    }
    synced = airline.client.post("/v1/sync/sales", json={"flight_id": flight["id"], "sales": [sale]})
    assert synced.status_code == 200 and synced.json()["inserted"] == 1, synced.text
    with sign_in(server, operator_key) as client:
        closed = client.get(f"/console/airlines/{airline.code}/statements/{label(old)}")
        current = client.get(f"/console/airlines/{airline.code}/statements/{utcnow():%Y-%m}")
        stored = client.get(f"/console/airlines/{airline.code}/statements/{label(old)}?format=csv")
    assert closed.status_code == 200 and "final" in closed.text and "no longer changes" in closed.text
    assert "Adjustments for closed months" not in closed.text
    assert current.status_code == 200 and "Adjustments for closed months" in current.text
    assert f'<th scope="row">{label(old)}</th><td>late sale</td>' in current.text
    assert "22.00 EUR" in current.text and "0.44 EUR" in current.text
    assert stored.content == admin.get(f"/admin/statements/{airline.code}/{label(old)}?format=csv").content


def test_web_pages_stay_out_of_the_openapi_document() -> None:
    paths = create_app(Settings()).openapi()["paths"]
    assert not [path for path in paths if path.startswith(("/console", "/shop", "/static"))]


def test_plotly_bundle_is_served_by_the_app(server: LiveServer) -> None:
    answer = httpx.get(f"{server.base_url}/static/vendor/plotly.min.js")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/javascript")
    assert "plotly.js" in answer.text[:200]


def test_sign_in_returns_to_the_asked_console_page_and_never_leaves_the_console(
    server: LiveServer, operator_key: str
) -> None:
    with httpx.Client(base_url=server.base_url) as client:
        for asked, landed in (
            ("/console/airlines/QA0", "/console/airlines/QA0"),
            ("https://evil.example/", "/console"),
        ):
            form = client.get("/console/sign-in", params={"next": asked})
            data = {"api_key": operator_key, "csrf_token": csrf_token(form.text), "next": asked}
            assert client.post("/console/sign-in", data=data).headers["location"] == landed
