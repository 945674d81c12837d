"""Parse a bulk import (JSON list or CSV) into validated rows and a row-by-row error report.

CSV columns: `sku`, `category`, `name.<locale>`, `description.<locale>`, `price.<CURRENCY>`,
`min_age`, `restrictions` (tags separated by `|`), `active` (true/false), `attributes` (a JSON object).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Any

import orjson
from pydantic import ValidationError

from skycart.catalog.schemas import ImportRowError, ProductCreate
from skycart.errors import UnsupportedMediaType, ValidationFailed

CSV_TYPES = ("text/csv", "application/csv")
JSON_TYPE = "application/json"
_TRUE = {"true", "1", "yes", "y"}
_FALSE = {"false", "0", "no", "n", ""}


def _validate(index: int, raw: Any) -> tuple[ProductCreate | None, list[ImportRowError]]:
    sku = raw.get("sku") if isinstance(raw, dict) else None
    try:
        return ProductCreate.model_validate(raw), []
    except ValidationError as exc:
        return None, [
            ImportRowError(
                row=index,
                sku=sku if isinstance(sku, str) else None,
                field=".".join(str(p) for p in err["loc"]) or None,
                message=err["msg"],
            )
            for err in exc.errors()
        ]


class CellError(ValueError):
    """A CSV cell that cannot be read as its column's type."""

    def __init__(self, field: str | None, message: str) -> None:
        super().__init__(message)
        self.field = field


def _min_age(value: str) -> int | None:
    if not value:
        return None
    if not (value.isascii() and value.isdigit()):
        raise CellError("min_age", f"min_age must be a whole number, not {value!r}")
    return int(value)


def _active(value: str) -> bool:
    if value.lower() not in _TRUE | _FALSE:
        raise CellError("active", f"active must be true or false, not {value!r}")
    return value.lower() in _TRUE if value else True


def _attributes(value: str) -> Any:
    try:
        return orjson.loads(value) if value else {}
    except orjson.JSONDecodeError as exc:
        raise CellError("attributes", f"attributes is not valid JSON: {exc}") from exc


def _csv_record(row: dict[str | None, Any]) -> dict[str, Any]:
    record: dict[str, Any] = {"name": {}, "description": {}, "prices": {}}
    for column, value in row.items():
        if column is None:
            raise CellError(None, "row has more cells than the header")
        column, value = column.strip(), (value or "").strip()
        prefix, _, suffix = column.partition(".")
        if prefix in ("name", "description") and suffix:
            if value:
                record[prefix][suffix] = value
        elif prefix == "price" and suffix:
            if value:
                record["prices"][suffix] = value
        elif column == "restrictions":
            record["restrictions"] = [tag.strip() for tag in value.split("|") if tag.strip()]
        elif column == "min_age":
            record["min_age"] = _min_age(value)
        elif column == "active":
            record["active"] = _active(value)
        elif column == "attributes":
            record["attributes"] = _attributes(value)
        else:
            record[column] = value
    return record


def parse_json(body: bytes, max_rows: int) -> list[Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ValidationFailed(f"body is not valid JSON: {exc}") from exc
    if isinstance(data, dict) and isinstance(data.get("products"), list):
        data = data["products"]
    if not isinstance(data, list):
        raise ValidationFailed('body must be a JSON list of products (or {"products": [...]})')
    if len(data) > max_rows:
        raise ValidationFailed(f"at most {max_rows} rows per import; got {len(data)}")
    return data


def parse_csv(body: bytes, max_rows: int) -> tuple[list[Any], list[ImportRowError]]:
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationFailed("CSV must be UTF-8") from exc
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames or "sku" not in [f.strip() for f in reader.fieldnames]:
        raise ValidationFailed("CSV needs a header row with at least a 'sku' column")
    records: list[Any] = []
    errors: list[ImportRowError] = []
    try:
        for index, row in enumerate(reader, start=1):
            if index > max_rows:
                raise ValidationFailed(f"at most {max_rows} rows per import")
            try:
                records.append(_csv_record(row))
            except CellError as exc:
                records.append(None)
                sku = (row.get("sku") or "").strip() or None
                errors.append(ImportRowError(row=index, sku=sku, field=exc.field, message=str(exc)))
    except csv.Error as exc:
        raise ValidationFailed(f"CSV is malformed: {exc}") from exc
    return records, errors


def validate_rows(
    records: list[Any], errors: list[ImportRowError]
) -> tuple[list[ProductCreate | None], list[ImportRowError]]:
    rows: list[ProductCreate | None] = []
    all_errors = list(errors)
    failed = {e.row for e in errors}
    for index, raw in enumerate(records, start=1):
        if index in failed:
            rows.append(None)
            continue
        row, row_errors = _validate(index, raw)
        rows.append(row)
        all_errors += row_errors
    return rows, all_errors


@dataclass(frozen=True, slots=True)
class Upload:
    """An import body parsed and validated row by row; `None` rows are the ones in `errors`."""

    rows: list[ProductCreate | None]
    errors: list[ImportRowError]


def check_media_type(media_type: str) -> None:
    if media_type not in (JSON_TYPE, *CSV_TYPES):
        raise UnsupportedMediaType("send application/json (a list of products) or text/csv")


def parse(body: bytes, media_type: str, max_rows: int) -> Upload:
    """Parse a JSON or CSV import body; the whole body fails only when it cannot be read at all."""
    check_media_type(media_type)
    if media_type in CSV_TYPES:
        records, errors = parse_csv(body, max_rows)
    else:
        records, errors = parse_json(body, max_rows), []
    return Upload(*validate_rows(records, errors))
