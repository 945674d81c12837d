"""Events for airlines' systems: the outbox (`record`, in the caller's transaction) and the event log."""

from skycart.events.service import EVENT_TYPES, record, record_once

__all__ = ["EVENT_TYPES", "record", "record_once"]
