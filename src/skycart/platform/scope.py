"""Keys a request carries in its ASGI scope from the auth and limit checks to the metering middleware."""

AIRLINE = "skycart.airline"
# The principal a request's key resolved to, when it was resolved before the body was read.
PRINCIPAL = "skycart.principal"
BILLABLE = "skycart.billable"
RATELIMIT = "skycart.ratelimit"
# A refusal the package check already decided for this request (by the warm-menu fast path): the route's
# check answers it as it is, without leasing again.
REFUSAL = "skycart.refusal"
REQUEST_ID = "skycart.request_id"
