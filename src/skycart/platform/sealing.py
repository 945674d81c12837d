"""Secrets the platform must read back (webhook signing secrets): sealed with Fernet, keys from settings.

`SKYCART_WEBHOOK_SECRETS_KEYS` holds one or more Fernet keys, comma-separated: the first seals, all of
them open, so a key is rotated by putting the new one first and dropping the old one once everything
sealed with it is sealed again. A laptop on SQLite without the setting gets a key file of its own next
to the database (mode 0600), made on first use.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from skycart.config import ConfigError, Settings

KEY_FILE = ".skycart-webhook-secrets.key"


class Sealer:
    """Seals and opens with the first of its keys (all open). Keys given as a function are read at first use."""

    def __init__(self, keys: list[bytes] | Callable[[], list[bytes]]) -> None:
        self._keys = keys
        self._fernet: MultiFernet | None = None if callable(keys) else _fernet(keys)

    def _sealing(self) -> MultiFernet:
        if self._fernet is None:
            assert callable(self._keys)
            self._fernet = _fernet(self._keys())
        return self._fernet

    def seal(self, plain: str) -> str:
        return self._sealing().encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._sealing().decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ConfigError("a sealed secret does not open with any SKYCART_WEBHOOK_SECRETS_KEYS key") from exc


def _fernet(keys: list[bytes]) -> MultiFernet:
    if not keys:
        raise ConfigError("no sealing key")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ConfigError("SKYCART_WEBHOOK_SECRETS_KEYS: not Fernet keys (urlsafe base64 of 32 bytes)") from exc


def sealer_for(settings: Settings) -> Sealer | None:
    """The process's sealer; None when no key is configured and none can be kept (MySQL without the setting)."""
    if settings.webhook_secrets_keys is not None:
        keys = [key.strip().encode() for key in settings.webhook_secrets_keys.get_secret_value().split(",")]
        return Sealer([key for key in keys if key])  # a bad key fails the start, not the first webhook
    if not settings.is_sqlite:
        return None
    return Sealer(lambda: [_local_key(settings)])  # the file is made only when a secret is first sealed


def _local_key(settings: Settings) -> bytes:
    database = settings.database_url.split("///", 1)[-1]
    folder = Path(database).resolve().parent if database and database != ":memory:" else Path.cwd()
    path = folder / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return path.read_bytes().strip()
    # Written whole under another name, then linked into place: a concurrent reader sees no file or all of it,
    # and of two processes making one, the first link wins and both use its key.
    draft = folder / f"{KEY_FILE}.{os.getpid()}.{secrets.token_hex(4)}"
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(Fernet.generate_key())
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return path.read_bytes().strip()
