"""What the app asks of a payment provider, whichever it is: authorize, void, refund.

Card data never reaches SkyCart: clients send a provider token. The sandbox provider (orders.payments)
implements this for development, demos and tests; a real provider's adapter implements the same.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

AuthorizationStatus = Literal["approved", "approved_offline", "declined"]


@dataclass(frozen=True, slots=True)
class Authorization:
    status: AuthorizationStatus
    reference: str
    reason: str = ""


class PaymentProvider(Protocol):
    name: str

    async def authorize(self, *, amount_minor: int, currency: str, token: str, reference: str) -> Authorization: ...

    async def void(self, *, payment_reference: str) -> None: ...

    async def refund(self, *, payment_reference: str, amount_minor: int, currency: str) -> None: ...
