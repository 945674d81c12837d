"""Sealed secrets: configured keys seal and open (and rotate); a SQLite laptop's own key file is made only
when first needed, once, whole, and readable by its owner only, however many processes start at once."""

from __future__ import annotations

import multiprocessing
import stat
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import SecretStr

from skycart.config import ConfigError, Settings
from skycart.platform.sealing import KEY_FILE, sealer_for


def test_configured_keys_seal_with_the_first_and_open_with_any() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_with_old = sealer_for(Settings(webhook_secrets_keys=SecretStr(old)))
    assert sealed_with_old is not None
    token = sealed_with_old.seal("whsec_abc")
    rotated = sealer_for(Settings(webhook_secrets_keys=SecretStr(f"{new}, {old}")))
    assert rotated is not None and rotated.open(token) == "whsec_abc"
    only_new = sealer_for(Settings(webhook_secrets_keys=SecretStr(new)))
    assert only_new is not None
    with pytest.raises(ConfigError):
        only_new.open(token)
    with pytest.raises(ConfigError):
        sealer_for(Settings(webhook_secrets_keys=SecretStr("not-a-key")))


def test_mysql_without_keys_has_no_sealer() -> None:
    assert sealer_for(Settings(database_url="mysql+asyncmy://u@127.0.0.1/skycart")) is None


def _seal_in(folder: str, queue: multiprocessing.Queue) -> None:
    sealer = sealer_for(Settings(database_url=f"sqlite:///{folder}/skycart.db"))
    assert sealer is not None
    queue.put(sealer.seal("whsec_shared"))


def test_a_laptops_key_file_is_made_on_first_use_once_for_every_process(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path}/skycart.db")
    sealer = sealer_for(settings)
    assert sealer is not None
    assert not (tmp_path / KEY_FILE).exists(), "nothing is written before a secret is sealed"
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue = context.Queue()
    racers = [context.Process(target=_seal_in, args=(str(tmp_path), queue)) for _ in range(6)]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(timeout=30)
        assert racer.exitcode == 0
    tokens = [queue.get(timeout=5) for _ in racers]
    assert all(sealer.open(token) == "whsec_shared" for token in tokens), "every process used the same key"
    key_file = tmp_path / KEY_FILE
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [KEY_FILE], "no draft is left behind"
