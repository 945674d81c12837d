"""How a statement is sent, by the API and the console alike: JSON with its digest, or a CSV download."""

from __future__ import annotations

from fastapi import Response

from skycart.billing import statements
from skycart.billing.schemas import Statement


def statement_response(found: statements.StatementDocument, format: str) -> Response:
    """A statement as JSON or as a CSV download; a closed month's bytes are the stored ones, with their digest."""
    digest = found.json_sha256 if format == "json" else found.csv_sha256
    headers = {} if digest is None else {"ETag": f'"sha256-{digest}"'}
    if format == "json":
        return Response(found.json, media_type="application/json", headers=headers)
    return csv_download(found.statement, found.csv, headers)


def csv_download(found: Statement, body: str | None = None, headers: dict[str, str] | None = None) -> Response:
    """A statement as a CSV file download."""
    return Response(
        statements.to_csv(found) if body is None else body,
        media_type="text/csv",
        headers={
            "Content-Disposition": f'attachment; filename="statement-{found.airline}-{found.month}.csv"',
            **(headers or {}),
        },
    )
