"""Deploy tooling against moto server (and real MariaDB for the rotation): the same fixture as tests/aws."""

from __future__ import annotations

import pytest

from tests.aws.conftest import AWS_ENV, moto_endpoint, reset_moto  # noqa: F401  (re-exported fixture)


@pytest.fixture
def fresh_moto(moto_endpoint: str) -> str:  # noqa: F811  (the fixture imported above)
    """moto_endpoint with an empty account: moto servers in one process share their state, so reset it first."""
    reset_moto(moto_endpoint)
    return moto_endpoint
