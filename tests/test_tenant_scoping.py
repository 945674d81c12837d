"""Every read or write of an airline's rows goes through the scoping choke point: each repository function
that touches a per-airline table takes the `Tenant` it acts for, or says in its name that it spans every
airline (`..._of_all_airlines`, reached only from operator routes and jobs)."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re

import skycart
import skycart.models
from skycart.airlines.models import Airline
from skycart.platform.db import Base

# Functions that find the airline before there is a tenant to scope by; each with the reason it may.
# Besides them, `add`/`add_*` insert rows that carry their airline already.
NOT_SCOPED = {
    "skycart.airlines.repository.key_by_hash": "authentication: finds which airline a key belongs to",
    "skycart.airlines.repository.key_exists": "authentication: whether a key id is still live",
    "skycart.airlines.repository.revoke_key": "operator: revokes a key by its id",
    "skycart.airlines.repository.key_owner": "operator: names the airline a key belongs to",
    "skycart.web.repository.live_session": "authentication: the key behind a console session",
}


def _per_airline_tables() -> dict[str, type]:
    found = {}
    for mapper in Base.registry.mappers:
        model = mapper.class_
        if model is not Airline and {"airline_id", "airline"} & set(mapper.columns.keys()):
            found[model.__name__] = model
    return found


def _repository_functions() -> list[tuple[str, object]]:
    found = []
    for info in pkgutil.walk_packages(skycart.__path__, "skycart."):
        if info.name.rsplit(".", 1)[-1] not in ("repository", "placing"):
            continue
        module = importlib.import_module(info.name)
        for name, function in inspect.getmembers(module, inspect.isfunction):
            if function.__module__ == module.__name__ and not name.startswith("_"):
                found.append((f"{module.__name__}.{name}", function))
    return found


def test_every_repository_function_on_an_airlines_rows_takes_a_tenant() -> None:
    tables = _per_airline_tables()
    assert {"Order", "Product", "UsageHour", "QuotaCounter", "ClosedStatement", "ApiKey"} <= tables.keys()
    unscoped = []
    checked = 0
    for qualified, function in _repository_functions():
        source = inspect.getsource(function)
        touched = sorted(name for name in tables if re.search(rf"\b{name}\b", source))
        name = qualified.rsplit(".", 1)[-1]
        if not touched or name == "add" or name.startswith("add_"):
            continue
        checked += 1
        annotations = [str(p.annotation) for p in inspect.signature(function).parameters.values()]
        takes_tenant = any(re.search(r"\bTenant\b", a) for a in annotations)
        if not takes_tenant and "of_all_airlines" not in qualified and qualified not in NOT_SCOPED:
            unscoped.append(f"{qualified} touches {touched} without a Tenant")
    assert checked > 20, "the check found the repositories"
    assert unscoped == []
