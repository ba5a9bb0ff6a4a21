"""Query strings, JSON bodies and base64 payloads turned into checked, plain request values."""

from __future__ import annotations

import base64
import binascii
import json
import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from eta311.errors import BadRequest, InvalidField, PayloadTooLarge, UnsupportedMediaType
from eta311.model.complaints import canonical_type
from eta311.model.features import is_valid_timestamp

# A generous box around the five boroughs: a point outside it is a typo or swapped lat/lon.
LATITUDE_RANGE = (40.45, 40.95)
LONGITUDE_RANGE = (-74.30, -73.65)
RECORD_FIELDS = ("complaint_type", "lat", "lon", "date")
QUERY_FIELDS = ("lat", "lon", "date")
MAX_TYPE_LENGTH = 120


@dataclass(frozen=True)
class PredictionRequest:
    """One request to estimate; date None means the median for its type is wanted."""

    complaint_type: str
    lat: float | None = None
    lon: float | None = None
    date: str | None = None

    @property
    def wants_model(self) -> bool:
        return self.date is not None or self.lat is not None


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes, mimetype: str) -> Any:
    """A JSON document from a request body; NaN and Infinity are refused as JSON itself does."""
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"Send JSON with Content-Type: application/json, not {mimetype or 'nothing'}")
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None


def decode_base64(text: object, field: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet): stray characters are an error, not dropped."""
    if not isinstance(text, str):
        raise InvalidField(field, f"{field} must be a base64 string")
    compact = "".join(text.split())
    try:
        if "-" in compact or "_" in compact:
            return base64.urlsafe_b64decode(compact.encode("ascii"))
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField(field, f"{field} is not valid base64") from None


def decode_payload(text: object, max_bytes: int) -> Any:
    """A base64 payload holding JSON, gzip-compressed or not, never inflated past max_bytes."""
    blob = decode_base64(text, "payload")
    if blob[:2] == b"\x1f\x8b":
        inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            blob = inflater.decompress(blob, max_bytes + 1)
        except zlib.error:
            raise InvalidField("payload", "payload is not valid gzip") from None
        if len(blob) > max_bytes or inflater.unconsumed_tail:
            raise PayloadTooLarge(f"The decoded payload is over the {max_bytes} byte limit")
    elif len(blob) > max_bytes:
        raise PayloadTooLarge(f"The decoded payload is over the {max_bytes} byte limit")
    return parse_json(blob, "application/json")


def _coordinate(value: object, field: str, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidField(field, f"{field} must be a number")
    try:
        number = float(value)
    except ValueError:
        raise InvalidField(field, f"{field} must be a number, not {value!r}") from None
    if not math.isfinite(number):
        raise InvalidField(field, f"{field} must be a finite number")
    if not bounds[0] <= number <= bounds[1]:
        raise InvalidField(field, f"{field} must be between {bounds[0]} and {bounds[1]} (New York City)")
    return number


def _complaint_type(value: object) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InvalidField("complaint_type", "complaint_type must be a non-empty string")
    if len(value) > MAX_TYPE_LENGTH:
        raise InvalidField("complaint_type", f"complaint_type must be at most {MAX_TYPE_LENGTH} characters")
    return canonical_type(value)


def _date(value: object) -> str:
    if not isinstance(value, str) or not is_valid_timestamp(value.strip()):
        raise InvalidField("date", "date must look like 2019-06-08 00:00:09 (New York local time)")
    return value.strip()


def prediction_request(values: Mapping[str, object], allowed: Sequence[str] = RECORD_FIELDS) -> PredictionRequest:
    """Check one record's fields; lat and lon come together, and coordinates need a date."""
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise InvalidField(unknown[0], f"Unknown field {unknown[0]!r}; expected only {', '.join(allowed)}")
    complaint_type = _complaint_type(values.get("complaint_type"))
    lat, lon, date = values.get("lat"), values.get("lon"), values.get("date")
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise InvalidField(missing, "lat and lon must be given together")
    if lat is not None and date is None:
        raise InvalidField("date", "date is required with lat and lon")
    return PredictionRequest(
        complaint_type,
        None if lat is None else _coordinate(lat, "lat", LATITUDE_RANGE),
        None if lon is None else _coordinate(lon, "lon", LONGITUDE_RANGE),
        None if date is None else _date(date),
    )


def query_request(complaint_type: str, args: Mapping[str, Sequence[str]]) -> PredictionRequest:
    """GET /predict/<type>?lat=..&lon=..&date=..: each parameter once, as the seed's clients send."""
    values: dict[str, object] = {"complaint_type": complaint_type}
    for name, given in args.items():
        if name not in QUERY_FIELDS:
            raise InvalidField(name, f"Unknown query parameter {name!r}; expected only {', '.join(QUERY_FIELDS)}")
        if len(given) != 1:
            raise InvalidField(name, f"{name} must be given once")
        values[name] = given[0]
    return prediction_request(values)


def batch_records(document: Any, max_rows: int, max_decoded_bytes: int) -> tuple[list[Any], bool]:
    """The rows of a POST /predict body, and whether it was a batch (answered as a list)."""
    if not isinstance(document, dict):
        raise BadRequest('The body must be a JSON object: one record, {"records": [...]} or {"payload": ...}')
    if "payload" in document:
        if set(document) != {"payload"}:
            raise InvalidField(sorted(set(document) - {"payload"})[0], 'A payload body holds only "payload"')
        document = decode_payload(document["payload"], max_decoded_bytes)
        if isinstance(document, list):
            document = {"records": document}
        if not isinstance(document, dict) or "records" not in document:
            raise InvalidField("payload", 'payload must hold {"records": [...]} or a list of records')
    if "records" not in document:
        return [document], False
    if set(document) != {"records"}:
        raise InvalidField(sorted(set(document) - {"records"})[0], 'A batch body holds only "records"')
    rows = document["records"]
    if not isinstance(rows, list):
        raise InvalidField("records", "records must be a list")
    if len(rows) > max_rows:
        raise PayloadTooLarge(f"At most {max_rows} records per request; this one has {len(rows)}")
    return rows, True


NO_BODY = object()


def echo_message(args: Mapping[str, Sequence[str]], document: Any = NO_BODY) -> tuple[bool, Any]:
    """The msg to echo, from the query string (one value stays a scalar) or a JSON body."""
    if document is not NO_BODY:
        if not isinstance(document, dict):
            raise BadRequest('The body must be a JSON object such as {"msg": "Hello"}')
        encoding = document.get("encoding")
        if "encoding" in document and encoding != "base64":
            raise InvalidField("encoding", 'encoding can only be "base64"')
        if "msg" not in document:
            return False, None
        if encoding == "base64":
            decode_base64(document["msg"], "msg")  # refuse what a client could not decode back
        return True, document["msg"]
    given = args.get("msg")
    if not given:
        return False, None
    return True, given[0] if len(given) == 1 else list(given)
