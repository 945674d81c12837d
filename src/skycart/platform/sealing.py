"""Secrets the platform must read back (webhook signing secrets): sealed with Fernet, keys from settings.

`SKYCART_WEBHOOK_SECRETS_KEYS` holds one or more Fernet keys, comma-separated: the first seals, all of
them open, so a key is rotated by putting the new one first and dropping the old one once everything
sealed with it is sealed again. A laptop on SQLite without the setting gets a key file of its own next
to the database (mode 0600), made on first use.
"""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from skycart.config import ConfigError, Settings

KEY_FILE = ".skycart-webhook-secrets.key"


class Sealer:
    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise ConfigError("no sealing key")
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, plain: str) -> str:
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken as exc:
            raise ConfigError("a sealed secret does not open with any SKYCART_WEBHOOK_SECRETS_KEYS key") from exc


def sealer_for(settings: Settings) -> Sealer | None:
    """The process's sealer; None when no key is configured and none can be kept (MySQL without the setting)."""
    if settings.webhook_secrets_keys is not None:
        keys = [key.strip().encode() for key in settings.webhook_secrets_keys.get_secret_value().split(",")]
        try:
            return Sealer([key for key in keys if key])
        except ValueError as exc:
            raise ConfigError("SKYCART_WEBHOOK_SECRETS_KEYS: not Fernet keys (urlsafe base64 of 32 bytes)") from exc
    if not settings.is_sqlite:
        return None
    return Sealer([_local_key(settings)])


def _local_key(settings: Settings) -> bytes:
    database = settings.database_url.split("///", 1)[-1]
    folder = Path(database).resolve().parent if database and database != ":memory:" else Path.cwd()
    path = folder / KEY_FILE
    try:
        return path.read_bytes().strip()
    except FileNotFoundError:
        key = Fernet.generate_key()
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first
            return path.read_bytes().strip()
        with os.fdopen(descriptor, "wb") as out:
            out.write(key)
        return key
