"""Console sessions: the cookie holds a random token, the database only its hash."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from skycart.platform.db import Base


class WebSession(Base):
    __tablename__ = "web_sessions"
    __table_args__ = (
        Index("ix_web_sessions_key", "key_id"),
        Index("ix_web_sessions_expires_at", "expires_at"),
    )

    # SHA-256 of the cookie's token: a copy of this table opens no session.
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    # The API key signed in with; revoking it ends its sessions at once, in every process.
    key_id: Mapped[str] = mapped_column(String(26), ForeignKey("api_keys.id", ondelete="CASCADE"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
