"""Keys a request carries in its ASGI scope from the auth and limit checks to the metering middleware."""

AIRLINE = "skycart.airline"
BILLABLE = "skycart.billable"
RATELIMIT = "skycart.ratelimit"
REQUEST_ID = "skycart.request_id"
