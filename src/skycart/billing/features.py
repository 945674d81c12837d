"""The features a plan may include, and what each one gates: plans name only these."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Feature:
    code: str
    description: str
    # API operations as (method, route template); refused with 403 feature_not_in_plan without the feature.
    operations: tuple[tuple[str, str], ...] = ()
    # Pages of the web console and storefront that need it.
    pages: tuple[str, ...] = ()


FEATURES: dict[str, Feature] = {
    feature.code: feature
    for feature in (
        Feature(
            "offline_sync",
            "Crew devices upload the sales they made offline",
            operations=(("POST", "/v1/sync/sales"),),
        ),
        Feature(
            "reports",
            "Flight reports: loaded, sold and remaining stock, discrepancies and revenue",
            operations=(("GET", "/v1/flights/{flight_id}/report"),),
            pages=("/console/flights/{flight_id} (report section)",),
        ),
        Feature(
            "webhooks",
            "Events pushed to the airline's systems: signed webhooks with retries, and the event log",
            operations=(
                ("GET", "/v1/events"),
                ("POST", "/v1/webhooks"),
                ("GET", "/v1/webhooks"),
                ("GET", "/v1/webhooks/{webhook_id}"),
                ("PATCH", "/v1/webhooks/{webhook_id}"),
                ("DELETE", "/v1/webhooks/{webhook_id}"),
                ("POST", "/v1/webhooks/{webhook_id}/secret"),
                ("GET", "/v1/webhooks/{webhook_id}/deliveries"),
                ("POST", "/v1/webhooks/{webhook_id}/deliveries/{delivery_id}/retry"),
            ),
        ),
        Feature(
            "storefront",
            "The passenger storefront pages SkyCart hosts for the airline's flights",
            pages=("/shop/{airline}/{flight_id}",),
        ),
    )
}

# (method, route template) -> the feature it needs.
FEATURE_GATES: dict[tuple[str, str], str] = {
    operation: feature.code for feature in FEATURES.values() for operation in feature.operations
}


def unknown_features(codes: list[str]) -> list[str]:
    return sorted(set(codes) - FEATURES.keys())
