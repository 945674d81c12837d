"""The webhook endpoints API: saved behind the SSRF guard, the secret shown once and rotated with a
24 h overlap, another airline's ids answered 404 with nothing changed, and the webhooks feature gate."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

import httpx
import pytest

from skycart.config import Settings
from skycart.errors import WebhookUrlRefused
from skycart.events import targets
from skycart.events.signing import PREFIX
from tests.conftest import AirlineHandle, LiveServer, assert_problem, serving

RECEIVER = "http://127.0.0.1:9/hooks"  # never posted to here: these tests only save endpoints


def _create(airline: AirlineHandle, url: str = RECEIVER, events: list[str] | None = None) -> httpx.Response:
    return airline.client.post("/v1/webhooks", json={"url": url, "events": events or ["order.created"]})


def test_an_endpoint_is_saved_and_its_secret_is_shown_only_once(airline: AirlineHandle) -> None:
    made = _create(airline, events=["order.created", "order.cancelled", "order.created"])
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["secret"].startswith(PREFIX) and len(body["secret"]) > 30
    assert body["events"] == ["order.created", "order.cancelled"]
    assert body["enabled"] is True and body["failing_since"] is None
    shown = airline.client.get(f"/v1/webhooks/{body['id']}").json()
    assert "secret" not in shown and shown["url"] == RECEIVER
    listed = airline.client.get("/v1/webhooks").json()["items"]
    assert [w["id"] for w in listed] == [body["id"]] and "secret" not in listed[0]


def test_an_endpoint_is_changed_and_deleted(airline: AirlineHandle) -> None:
    made = _create(airline).json()
    changed = airline.client.patch(
        f"/v1/webhooks/{made['id']}", json={"events": ["plan.changed"], "enabled": False, "url": RECEIVER + "/v2"}
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["events"], changed.json()["enabled"]) == (["plan.changed"], False)
    assert changed.json()["url"] == RECEIVER + "/v2"
    assert_problem(airline.client.patch(f"/v1/webhooks/{made['id']}", json={"events": []}), 422, "validation_error")
    assert_problem(
        airline.client.patch(f"/v1/webhooks/{made['id']}", json={"events": ["nope"]}), 422, "validation_error"
    )
    assert airline.client.delete(f"/v1/webhooks/{made['id']}").status_code == 204
    assert_problem(airline.client.get(f"/v1/webhooks/{made['id']}"), 404, "not_found")
    assert_problem(airline.client.delete(f"/v1/webhooks/{made['id']}"), 404, "not_found")


def test_a_rotated_secret_is_new_and_the_old_one_signs_for_24_hours(airline: AirlineHandle) -> None:
    made = _create(airline).json()
    before = datetime.fromisoformat(airline.client.get("/v1/webhooks").json()["items"][0]["updated_at"])
    rotated = airline.client.post(f"/v1/webhooks/{made['id']}/secret")
    assert rotated.status_code == 200, rotated.text
    body = rotated.json()
    assert body["secret"].startswith(PREFIX) and body["secret"] != made["secret"]
    overlap = datetime.fromisoformat(body["previous_valid_until"]) - before
    assert timedelta(hours=23, minutes=59) < overlap < timedelta(hours=24, minutes=1)


def test_another_airlines_webhooks_answer_404_and_change_nothing(make_airline) -> None:
    owner, other = make_airline(), make_airline()
    made = _create(owner).json()
    hook = f"/v1/webhooks/{made['id']}"
    assert_problem(other.client.get(hook), 404, "not_found")
    assert_problem(other.client.patch(hook, json={"enabled": False}), 404, "not_found")
    assert_problem(other.client.post(f"{hook}/secret"), 404, "not_found")
    assert_problem(other.client.get(f"{hook}/deliveries"), 404, "not_found")
    assert_problem(other.client.post(f"{hook}/deliveries/01KB0000000000000000000000/retry"), 404, "not_found")
    assert_problem(other.client.delete(hook), 404, "not_found")
    assert other.client.get("/v1/webhooks").json()["items"] == []
    still = owner.client.get(hook).json()
    assert still["enabled"] is True and still["updated_at"] == made["updated_at"]


def test_an_unknown_delivery_answers_404_and_a_new_endpoint_has_none(airline: AirlineHandle) -> None:
    made = _create(airline).json()
    assert airline.client.get(f"/v1/webhooks/{made['id']}/deliveries").json() == {"items": [], "next_cursor": None}
    retry = airline.client.post(f"/v1/webhooks/{made['id']}/deliveries/01KB0000000000000000000000/retry")
    assert_problem(retry, 404, "not_found")
    assert_problem(
        airline.client.get(f"/v1/webhooks/{made['id']}/deliveries", params={"status": "lost"}), 422, "validation_error"
    )


def test_the_webhooks_api_needs_the_webhooks_feature(make_airline) -> None:
    basic = make_airline(plan="basic")
    body = assert_problem(_create(basic), 403, "feature_not_in_plan")
    assert body["feature"] == "webhooks"
    assert_problem(basic.client.get("/v1/webhooks"), 403, "feature_not_in_plan")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://127.0.0.1/hooks", "loopback"),
        ("https://10.0.0.1/hooks", "private"),
        ("https://192.168.1.20/hooks", "private"),
        ("https://169.254.169.254/latest/meta-data/", "link-local"),
        ("https://[::1]/hooks", "loopback"),
        ("https://[::ffff:127.0.0.1]/hooks", "loopback"),
        ("https://[fd00:ec2::254]/hooks", "private"),
        ("https://localhost/hooks", "loopback"),  # a name, resolved: it points at loopback
        ("http://203.0.113.9/hooks", "https"),
        ("https://user:pw@203.0.113.9/hooks", "credentials"),
        ("ftp://203.0.113.9/hooks", "https"),
        ("https://no-such-host.invalid/hooks", "does not resolve"),
    ],
)
def test_the_guard_refuses_what_a_webhook_may_not_reach(url: str, why: str) -> None:
    with pytest.raises(WebhookUrlRefused, match=why):
        asyncio.run(targets.resolve(url, Settings()))


def test_the_guard_is_opened_only_by_its_two_settings() -> None:
    opened = Settings(webhooks_allow_http=True, webhooks_allow_private=True)
    assert asyncio.run(targets.resolve("http://127.0.0.1:8080/hooks", opened)).address == "127.0.0.1"
    with pytest.raises(WebhookUrlRefused, match="https"):
        asyncio.run(targets.resolve("http://127.0.0.1:8080/hooks", Settings(webhooks_allow_private=True)))
    with pytest.raises(WebhookUrlRefused, match="loopback"):
        asyncio.run(targets.resolve("https://127.0.0.1/hooks", Settings(webhooks_allow_http=True)))


def test_a_server_with_the_guard_on_refuses_private_urls_with_a_problem(server: LiveServer, make_airline) -> None:
    airline = make_airline()
    guarded = server.settings.model_copy(update={"webhooks_allow_http": False, "webhooks_allow_private": False})
    with serving(guarded, server.backend) as live, live.client(airline.key) as client:
        for url in ("https://127.0.0.1/hooks", "https://169.254.169.254/", "https://localhost/hooks"):
            body = assert_problem(
                client.post("/v1/webhooks", json={"url": url, "events": ["order.created"]}), 422, "webhook_url_refused"
            )
            assert "public hosts" in body["detail"]
        # A public address passes (saved, then deleted: nothing is ever posted to it here).
        made = client.post("/v1/webhooks", json={"url": "https://8.8.8.8/hooks", "events": ["order.created"]})
        assert made.status_code == 201, made.text
        assert client.delete(f"/v1/webhooks/{made.json()['id']}").status_code == 204
