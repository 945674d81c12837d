"""Keys a request carries in its ASGI scope from the auth and limit checks to the metering middleware."""

AIRLINE = "skycart.airline"
# The principal a request's key resolved to, when it was resolved before the body was read.
PRINCIPAL = "skycart.principal"
BILLABLE = "skycart.billable"
RATELIMIT = "skycart.ratelimit"
REQUEST_ID = "skycart.request_id"
