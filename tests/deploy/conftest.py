"""Deploy tooling against moto server (and real MariaDB for the rotation): the same fixture as tests/aws."""

from __future__ import annotations

from tests.aws.conftest import AWS_ENV, moto_endpoint  # noqa: F401  (re-exported fixture)
