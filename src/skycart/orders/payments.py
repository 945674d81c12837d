"""Payment providers. Card data never reaches SkyCart: clients send a provider token.

Sandbox test tokens:
  tok_ok        approved
  tok_declined  declined (402 payment_declined; no order, no stock taken)
  tok_offline   approved offline (status paid_offline), e.g. a card read without connectivity
  tok_slow      approved after SKYCART_SANDBOX_SLOW_SECONDS (2 s), as a real provider's round trip can take
Any other token is declined.
"""

from __future__ import annotations

import asyncio
import secrets

from skycart.platform.payments import Authorization, AuthorizationStatus, PaymentProvider

__all__ = ["Authorization", "AuthorizationStatus", "PaymentProvider", "SandboxProvider", "provider_for"]


class SandboxProvider:
    """Deterministic provider for development, demos and tests."""

    name = "sandbox"
    TOKENS = {
        "tok_ok": "approved",
        "tok_offline": "approved_offline",
        "tok_declined": "declined",
        "tok_slow": "approved",
    }
    SLOW_SECONDS = 2.0

    def __init__(self, *, slow_seconds: float = SLOW_SECONDS) -> None:
        self.slow_seconds = slow_seconds

    async def authorize(self, *, amount_minor: int, currency: str, token: str, reference: str) -> Authorization:
        if token == "tok_slow":
            await asyncio.sleep(self.slow_seconds)
        status = self.TOKENS.get(token, "declined")
        reason = (
            ""
            if status != "declined"
            else (
                "card declined"
                if token == "tok_declined"
                else "unknown sandbox token; use tok_ok, tok_offline, tok_slow or tok_declined"
            )
        )
        return Authorization(status=status, reference=f"sbx_{secrets.token_hex(8)}", reason=reason)  # type: ignore[arg-type]

    async def void(self, *, payment_reference: str) -> None:
        return None

    async def refund(self, *, payment_reference: str, amount_minor: int, currency: str) -> None:
        return None


def provider_for(name: str, *, sandbox_slow_seconds: float = SandboxProvider.SLOW_SECONDS) -> PaymentProvider:
    if name == "sandbox":
        return SandboxProvider(slow_seconds=sandbox_slow_seconds)
    raise ValueError(f"unknown payment provider {name!r}")
