"""Query strings, JSON bodies and base64 payloads turned into checked, plain request values."""

from __future__ import annotations

import base64
import binascii
import datetime
import functools
import itertools
import json
import math
import re
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import orjson

from eta311.errors import ApiError, BadRequest, InvalidField, PayloadTooLarge, UnsupportedMediaType
from eta311.model.complaints import canonical_type
from eta311.model.features import parse_timestamp, parse_timestamps

# A generous box around the five boroughs: a point outside it is a typo or swapped lat/lon.
LATITUDE_RANGE = (40.45, 40.95)
LONGITUDE_RANGE = (-74.30, -73.65)
RECORD_FIELDS = ("complaint_type", "lat", "lon", "date")
QUERY_FIELDS = ("lat", "lon", "date")
MAX_TYPE_LENGTH = 120
_RECORD_FIELD_SET = frozenset(RECORD_FIELDS)
# Batches repeat a few dozen types thousands of times: fold each spelling once.
_canonical_type = functools.lru_cache(maxsize=4096)(canonical_type)
# A coordinate sent as a string: plain ASCII decimal, as float() would take "4_0.7" or Arabic-Indic digits.
_DECIMAL = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d{1,3})?", re.ASCII)
MAX_NUMBER_TEXT = 40

# The shape of a JSON document is checked on its bytes before json.loads builds it (json.loads of
# a 32 MiB '[{},{},...]' makes millions of objects, ~0.8 GB, and ~1,000 levels of nesting raise
# RecursionError). Records are a handful of fields, so 16 values a row is generous; no request
# needs more than a few levels.
MAX_JSON_DEPTH = 32
VALUES_PER_ROW = 16
# A string token runs to its closing quote or, unclosed, to the end of the body in one match: were
# an unclosed string to fail and be retried from each later quote, the scan would be quadratic.
_JSON_TOKEN = re.compile(rb'"(?:[^"\\]|\\.)*+(?:"|\Z)|[\[\]{},]', re.DOTALL)
_OPENERS = {ord("{"), ord("[")}
_CLOSERS = {ord("}"), ord("]")}
_COMMA, _QUOTE = ord(","), ord('"')


@dataclass(frozen=True)
class PredictionRequest:
    """One request to estimate; date None means the median for its type is wanted."""

    complaint_type: str
    lat: float | None = None
    lon: float | None = None
    date: str | None = None
    # The date as the check parsed it (datetime64[ms]), so the model does not parse it again.
    stamp: np.datetime64 | None = field(default=None, compare=False, repr=False)

    @property
    def wants_model(self) -> bool:
        return self.date is not None or self.lat is not None


def max_json_values(max_rows: int) -> int:
    """The most JSON values (items and members) a body may hold: enough for max_rows records."""
    return VALUES_PER_ROW * max_rows + 1024


class _Shape:
    """Walks the structural tokens of a JSON text, naming where it is (the top-level member and item)."""

    def __init__(self, outer: str | None):
        self.outer = outer  # the field that holds the whole text (a payload), if any
        self.depth = self.values = self.index = 0
        self.key: str | None = None
        self.expect_key = False
        self.top_is_array = False

    def where(self) -> str:
        if self.outer:
            return self.outer
        if self.top_is_array:
            return f"[{self.index}]"
        return self.key or "body"

    def check(self, blob: bytes, max_depth: int, max_values: int) -> None:
        for match in _JSON_TOKEN.finditer(blob):
            char = blob[match.start()]
            if char == _QUOTE:
                if self.depth == 1 and self.expect_key:
                    self.key, self.expect_key = match.group()[1:-1].decode("utf-8", "replace")[:80], False
                continue
            if char in _OPENERS:
                self.depth += 1
                self.values += 1
                if self.depth == 1:
                    self.top_is_array, self.expect_key = char == ord("["), char == ord("{")
                elif self.depth > max_depth:
                    field = self.where()
                    raise InvalidField(field, f"{field} is nested deeper than {max_depth} levels")
            elif char in _CLOSERS:
                self.depth -= 1
            else:  # a comma: one more value
                self.values += 1
                if self.depth == 1:
                    self.expect_key = not self.top_is_array
                    self.index += 1
            if self.values > max_values:
                raise PayloadTooLarge(
                    f"The JSON holds more than {max_values} values ({VALUES_PER_ROW} a record)", field=self.where()
                )


def check_json_shape(blob: bytes, max_values: int, outer: str | None = None, max_depth: int = MAX_JSON_DEPTH) -> None:
    """Refuse, before anything is built, JSON nested deeper than max_depth or holding more than max_values values.

    A string's brackets and commas are not structure, so strings are skipped whole. Counting
    stops at the first limit passed, so a hostile body costs at most max_values steps.
    """
    openers = blob.count(b"{") + blob.count(b"[")
    if openers <= max_depth and openers + blob.count(b",") <= max_values:
        return  # cannot be too deep or too big, whatever its strings hold: the common small request
    if _within_limits(blob, max_depth, max_values):
        return  # a large batch: the walk below would take 30 ms for 10,000 rows to find nothing
    _Shape(outer).check(blob, max_depth, max_values)


_DEPTH_STEPS = np.zeros(256, dtype=np.int8)
_DEPTH_STEPS[list(b"{[")] = 1
_DEPTH_STEPS[list(b"}]")] = -1
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"{}[]")


_NOT_MARKS = bytes(b for b in range(256) if b not in b'{}[],"')
_VALUE_MARKS = np.zeros(256, dtype=bool)
_VALUE_MARKS[list(b"{[,")] = True


def _marks_within_limits(marks: bytes, max_depth: int, max_values: int) -> bool:
    """_within_limits on the quotes, brackets and commas of a text alone: numpy instead of a split per string."""
    codes = np.frombuffer(marks, dtype=np.uint8)
    # A mark after an even number of quotes lies outside every string (each string is one pair).
    outside = (np.cumsum(codes == _QUOTE, dtype=np.int32) & 1) == 0
    if int(np.count_nonzero(_VALUE_MARKS[codes] & outside)) > max_values:
        return False
    depth = np.cumsum(_DEPTH_STEPS[codes] * outside, dtype=np.int32)
    return int(depth.max(initial=0)) <= max_depth


def _within_limits(blob: bytes, max_depth: int, max_values: int) -> bool:
    """True only when the walk would pass the whole text: said without a Python loop per token.

    With no backslash and an even number of quotes, every string is one pair of quotes, exactly
    as the walk's token pattern reads it, so the structure is what lies between the pairs. Anything
    else (escapes, an odd quote) is False and left to the walk, as is any text near a limit.
    """
    quotes = blob.count(b'"')
    # Each string is a key or a value, so text within the limits has at most 2 x max_values + 1 of
    # them; past that the split below would make millions of small objects (the walk stops early).
    if b"\\" in blob or quotes % 2 or quotes > 4 * max_values + 2:
        return False
    # A batch's usual text holds a few marks a row; counted first, so a hostile text is never copied whole.
    if quotes + sum(blob.count(mark) for mark in (b"{", b"}", b"[", b"]", b",")) <= 8 * max_values:
        return _marks_within_limits(blob.translate(None, _NOT_MARKS), max_depth, max_values)
    structure = b"".join(blob.split(b'"')[0::2])
    openers = structure.count(b"{") + structure.count(b"[")
    if openers + structure.count(b",") > max_values:
        return False
    brackets = structure.translate(None, _NOT_BRACKETS)  # at most 2 x max_values bytes, whatever else the text holds
    depth = np.cumsum(_DEPTH_STEPS[np.frombuffer(brackets, dtype=np.uint8)], dtype=np.int32)
    return int(depth.max(initial=0)) <= max_depth


def _locate_non_finite(document: Any, path: str) -> str | None:
    if isinstance(document, float) and not math.isfinite(document):
        return path
    if isinstance(document, dict):
        items = ((f"{path}.{k}" if path else str(k), v) for k, v in document.items())
    elif isinstance(document, list):
        items = ((f"{path}[{i}]", v) for i, v in enumerate(document))
    else:
        return None
    return next((found for p, v in items if (found := _locate_non_finite(v, p)) is not None), None)


_NOT_READ = object()


def _read_fast(body: bytes, max_values: int, outer: str | None) -> Any:
    """orjson's reading of body, or _NOT_READ; refused by check_json_shape exactly when it refuses it.

    Every value but the first starts with a comma or sits in a bracket, so a text with few
    enough of them, inside strings or not, is within the limit and is read before its shape is
    walked: a batch is then seen to be three levels deep from the document itself (_flat_rows).
    """
    openers, marks = _value_marks(body)
    walked = marks > max_values
    if walked:  # may be past the limit: judged before anything is built
        check_json_shape(body, max_values, outer)
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        document = _NOT_READ
    if not walked and openers > MAX_JSON_DEPTH and not _flat_rows(document, openers):
        check_json_shape(body, max_values, outer)
    return document


def _value_marks(blob: bytes) -> tuple[int, int]:
    """How many brackets open in the text, and those plus its commas, in strings or not."""
    if len(blob) < 1 << 16:
        openers = blob.count(b"{") + blob.count(b"[")
        return openers, openers + blob.count(b",")
    codes = np.frombuffer(blob, dtype=np.uint8)  # numpy counts a large text several times faster
    openers = int(np.count_nonzero(codes == ord("{"))) + int(np.count_nonzero(codes == ord("[")))
    return openers, openers + int(np.count_nonzero(codes == ord(",")))


def _flat_rows(document: Any, openers: int) -> bool:
    """True when the document is a list of objects, alone or as the one member of an object, and no other
    bracket opens in the text (not even in a string): then no value nests deeper than its row, three levels."""
    rows, containers = document, 1
    if type(rows) is dict and len(rows) == 1:
        rows, containers = next(iter(rows.values())), 2
    return type(rows) is list and containers + len(rows) == openers and set(map(type, rows)) <= {dict}


def parse_json(
    body: bytes,
    mimetype: str,
    max_values: int | None = None,
    outer: str | None = None,
    allow_non_finite: bool = False,
) -> Any:
    """A JSON document from a request body, its shape checked before it is built.

    NaN, Infinity and numbers too large for a float are not JSON numbers. With allow_non_finite
    they come through as float NaN/inf so that the field checks name the field (and in a batch
    fail only their row); otherwise the first one is a 400 naming where it is.
    """
    if mimetype != "application/json" and not mimetype.endswith("+json"):
        raise UnsupportedMediaType(f"Send JSON with Content-Type: application/json, not {mimetype or 'nothing'}")
    max_values = max_json_values(10_000) if max_values is None else max_values
    if not allow_non_finite:
        check_json_shape(body, max_values, outer)
    else:
        # The predict checks turn every number into a float and never echo one, so orjson (4x
        # faster on a batch) reads the same request: it differs from json.loads only in reading
        # integers past 64 bits as floats. What it refuses (NaN, inf, a number past any float, a
        # lone surrogate, a BOM, UTF-16, bad JSON) goes to json.loads below, for its values and messages.
        document = _read_fast(body, max_values, outer)
        if document is not _NOT_READ:
            return document
    non_finite = []

    def constant(name: str) -> float:
        non_finite.append(name)
        return float(name)

    def big_int(digits: str) -> int | float:
        if len(digits.lstrip("-")) > 300:  # past any float, and int() of thousands of digits is slow
            non_finite.append(digits[:20] + "...")
            return float("-inf") if digits.startswith("-") else float("inf")
        return int(digits)

    def decimal(text: str) -> float:
        number = float(text)
        if not math.isfinite(number):
            non_finite.append(text)
        return number

    try:
        document = json.loads(body, parse_constant=constant, parse_int=big_int, parse_float=decimal)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}") from None
    if non_finite and not allow_non_finite:
        where = outer or _locate_non_finite(document, "") or "body"
        raise InvalidField(where, f"{where} holds {non_finite[0]}: JSON numbers must be finite")
    return document


def read_body(stream: Any, declared_length: int | None, max_bytes: int) -> bytes:
    """The request body, at most max_bytes: a 413 past it, for a declared length and a chunked body alike."""
    if declared_length is not None and declared_length > max_bytes:
        raise PayloadTooLarge(f"The request body is over the size limit of {max_bytes} bytes")
    chunks, size = [], 0
    # A declared length is asked for in one read (its end is the stream's end): a 1 MB batch in 64 KiB
    # steps cost 16 turns of the server's reader, each a wait for the GIL while a batch computes.
    step = max(1 << 16, (declared_length or 0) + 1)
    while True:
        try:
            chunk = stream.read(min(step, max_bytes + 1 - size))
        except Exception as error:  # the server's reader: a bad chunk size or a client gone mid-body
            raise BadRequest(f"The request body could not be read ({type(error).__name__}): resend it whole") from None
        if not chunk:
            if declared_length is not None and size < declared_length:
                # The client closed before sending what it declared: what came is not the body it meant.
                raise BadRequest(
                    f"The request body ended after {size} of its declared {declared_length} bytes: resend it whole"
                )
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"The request body is over the size limit of {max_bytes} bytes")


_URL_SAFE_TO_STANDARD = str.maketrans("-_", "+/")


def decode_base64(text: object, field: str) -> bytes:
    """Strict base64 (standard or URL-safe alphabet): stray characters are an error, not dropped."""
    if not isinstance(text, str):
        raise InvalidField(field, f"{field} must be a base64 string")
    compact = "".join(text.split())
    if "-" in compact or "_" in compact:
        if "+" in compact or "/" in compact:
            raise InvalidField(field, f"{field} mixes the standard and URL-safe base64 alphabets")
        compact = compact.translate(_URL_SAFE_TO_STANDARD)  # then checked as strictly as the standard one
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError):
        raise InvalidField(field, f"{field} is not valid base64") from None


def decode_payload(text: object, max_bytes: int, max_values: int | None = None) -> Any:
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
        # A stream cut short, or followed by more bytes (a second gzip stream, whose records would
        # be silently dropped): refused, so no record is ever lost without a word.
        if not inflater.eof:
            raise InvalidField("payload", "payload's gzip stream is cut short")
        if inflater.unused_data:
            raise InvalidField("payload", "payload holds bytes after its gzip stream (one stream, please)")
    elif len(blob) > max_bytes:
        raise PayloadTooLarge(f"The decoded payload is over the {max_bytes} byte limit")
    return parse_json(blob, "application/json", max_values, outer="payload", allow_non_finite=True)


def _coordinate(value: object, field: str, bounds: tuple[float, float]) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidField(field, f"{field} must be a number")
    if isinstance(value, str) and (len(value) > MAX_NUMBER_TEXT or not _DECIMAL.fullmatch(value)):
        raise InvalidField(field, f"{field} must be a decimal number such as 40.7, not {value[:MAX_NUMBER_TEXT]!r}")
    try:
        number = float(value)
    except (ValueError, OverflowError):  # OverflowError: an integer of thousands of digits
        raise InvalidField(field, f"{field} must be a finite number") from None
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
    return _canonical_type(value)


DATE_PROBLEM = "date must look like 2019-06-08 00:00:09 (New York local time)"
# Dates are when a complaint was made: 311 data starts in 2010, and a date centuries away is a typo.
YEAR_RANGE = (2000, 2100)
_FIRST_STAMP, _END_STAMP = (np.datetime64(f"{year}-01-01", "ms") for year in YEAR_RANGE)


_FIRST_MOMENT, _END_MOMENT = (datetime.datetime(year, 1, 1) for year in YEAR_RANGE)


def _date(value: object) -> tuple[str, np.datetime64]:
    stamp = parse_timestamp(value.strip()) if isinstance(value, str) and value.isascii() else None
    # As a Python datetime (None for NaT, an int for years outside 1-9999) the checks cost a fraction
    # of numpy's scalar comparisons, a request's latency path.
    moment = None if stamp is None else stamp.item()
    if moment is None:
        raise InvalidField("date", DATE_PROBLEM)
    if not (isinstance(moment, datetime.datetime) and _FIRST_MOMENT <= moment < _END_MOMENT):
        raise InvalidField("date", f"date must be in the years {YEAR_RANGE[0]} to {YEAR_RANGE[1] - 1}")
    return value.strip(), stamp


def prediction_request(values: Mapping[str, object], allowed: Sequence[str] = RECORD_FIELDS) -> PredictionRequest:
    """Check one record's fields; lat and lon come together, and coordinates need a date."""
    known = _RECORD_FIELD_SET if allowed is RECORD_FIELDS else frozenset(allowed)
    if not known.issuperset(values):
        unknown = sorted(set(values) - known)
        raise InvalidField(unknown[0], f"Unknown field {unknown[0]!r}; expected only {', '.join(allowed)}")
    complaint_type = _complaint_type(values.get("complaint_type"))
    lat, lon, date = values.get("lat"), values.get("lon"), values.get("date")
    if (lat is None) != (lon is None):
        missing = "lon" if lon is None else "lat"
        raise InvalidField(missing, "lat and lon must be given together")
    if lat is not None and date is None:
        raise InvalidField("date", "date is required with lat and lon")
    lat = None if lat is None else _coordinate(lat, "lat", LATITUDE_RANGE)
    lon = None if lon is None else _coordinate(lon, "lon", LONGITUDE_RANGE)
    if date is None:
        return PredictionRequest(complaint_type, lat, lon)
    return PredictionRequest(complaint_type, lat, lon, *_date(date))


@dataclass
class CheckedRows:
    """A batch checked column by column: the rows the model answers, those the medians answer, and failures."""

    model_rows: list[int] = field(default_factory=list)
    complaint_types: list[str] = field(default_factory=list)
    lats: list[float | None] = field(default_factory=list)
    lons: list[float | None] = field(default_factory=list)
    stamps: list[np.datetime64] = field(default_factory=list)
    median_rows: list[int] = field(default_factory=list)
    median_types: list[str] = field(default_factory=list)
    failures: list[tuple[int, ApiError]] = field(default_factory=list)

    def add(self, index: int, request: PredictionRequest) -> None:
        if request.wants_model:
            self.model_rows.append(index)
            self.complaint_types.append(request.complaint_type)
            self.lats.append(request.lat)
            self.lons.append(request.lon)
            self.stamps.append(request.stamp)
        else:
            self.median_rows.append(index)
            self.median_types.append(request.complaint_type)


def _in_range(values: list[float | None], bounds: tuple[float, float]) -> np.ndarray:
    numbers = np.array([np.nan if v is None else v for v in values], dtype=np.float64)
    given = np.array([v is not None for v in values], dtype=bool)
    return ~given | ((numbers >= bounds[0]) & (numbers <= bounds[1]))


def check_records(rows: Sequence[Any]) -> CheckedRows:
    """Every row of a batch checked as prediction_request checks one record, the usual shapes in bulk.

    A batch of JSON objects with known fields, string types, float coordinates or none, and
    string dates or none is checked column by column (numpy); any row a column check fails goes
    through prediction_request itself, so a failure names the same field with the same message.
    Any other batch is checked row by row (_check_rows), to the same decisions.
    """
    columns = _record_columns(rows)
    if columns is None:
        return _check_rows(rows)
    kinds, lats, lons, dates, spellings = columns
    lat_given, lon_given = ~np.isnan(lats), ~np.isnan(lons)
    plain = (lat_given == lon_given) & _types_fit(kinds, spellings)
    dated = _given(dates)
    median = plain & ~dated & ~lat_given
    candidate = np.flatnonzero(plain & dated)
    texts = dates if len(candidate) == len(dates) else [dates[i] for i in candidate.tolist()]
    stamps = parse_timestamps(list(map(str.strip, texts)))
    lat, lon = lats[candidate], lons[candidate]
    fine = (stamps >= _FIRST_STAMP) & (stamps < _END_STAMP)  # NaT compares False: unparsed dates fail too
    fine &= np.isnan(lat) | ((lat >= LATITUDE_RANGE[0]) & (lat <= LATITUDE_RANGE[1]))
    fine &= np.isnan(lon) | ((lon >= LONGITUDE_RANGE[0]) & (lon <= LONGITUDE_RANGE[1]))
    # Only types that fit are folded: the fold's cache would otherwise keep a client's megabyte-long strings.
    canonical = {kind: _canonical_type(kind) for kind in spellings if len(kind) <= MAX_TYPE_LENGTH}
    checked = CheckedRows()
    checked.model_rows = candidate[fine].tolist()
    if len(checked.model_rows) == len(kinds):  # the usual batch: every row for the model
        checked.complaint_types = list(map(canonical.__getitem__, kinds))
    else:
        checked.complaint_types = [canonical[kinds[i]] for i in checked.model_rows]
    checked.median_rows = np.flatnonzero(median).tolist()
    checked.median_types = [canonical[kinds[i]] for i in checked.median_rows]
    slow = np.flatnonzero(~(median | dated & plain)).tolist() + candidate[~fine].tolist()
    rest = _check_rows([rows[i] for i in slow])
    checked.model_rows += [slow[i] for i in rest.model_rows]
    checked.complaint_types += rest.complaint_types
    checked.median_rows += [slow[i] for i in rest.median_rows]
    checked.median_types += rest.median_types
    checked.failures = [(slow[i], error) for i, error in rest.failures]
    # Not given is NaN here: a NaN a client sent never passes the checks.
    checked.lats = np.concatenate([lat[fine], np.array(rest.lats, dtype=np.float64)])
    checked.lons = np.concatenate([lon[fine], np.array(rest.lons, dtype=np.float64)])
    checked.stamps = np.concatenate([stamps[fine], np.array(rest.stamps, dtype="datetime64[ms]")])
    return checked


_NONE = type(None)


def _record_columns(rows: Sequence[Any]) -> tuple[list, np.ndarray, np.ndarray, list, dict] | None:
    """Types, lats, lons (NaN where not given), dates and the distinct types of a batch in the usual shapes, else None."""
    if not rows or set(map(type, rows)) != {dict} or not set().union(*rows) <= _RECORD_FIELD_SET:
        return None
    kinds, lats, lons, dates = (list(map(dict.get, rows, itertools.repeat(name))) for name in RECORD_FIELDS)
    if not set(map(type, dates)) <= {str, _NONE}:
        return None
    try:
        spellings = dict.fromkeys(kinds)  # a few dozen: their types are checked, not 10,000 rows'
    except TypeError:  # a list or an object
        return None
    if set(map(type, spellings)) != {str}:
        return None
    numbers = []
    for column in (lats, lons):
        if not set(map(type, column)) <= {float, _NONE}:
            return None
        values = np.array(column, dtype=np.float64)  # None becomes NaN
        not_numbers = np.count_nonzero(np.isnan(values))
        if not_numbers and not_numbers != column.count(None):
            return None  # a NaN sent as a number (json.loads reads NaN): the row-by-row checks name it
        numbers.append(values)
    return kinds, numbers[0], numbers[1], dates, spellings


def _types_fit(kinds: list[str], spellings: Iterable[str]) -> np.ndarray | bool:
    """Rows whose type passes _complaint_type's checks (judged once per distinct spelling)."""
    unfit = {kind for kind in spellings if len(kind) > MAX_TYPE_LENGTH or not kind.strip()}
    if not unfit:
        return True
    return np.array([kind not in unfit for kind in kinds], dtype=bool)


def _given(values: list) -> np.ndarray:
    if values.count(None) == 0:
        return np.ones(len(values), dtype=bool)
    return np.array([value is not None for value in values], dtype=bool)


def _check_rows(rows: Sequence[Any]) -> CheckedRows:
    """check_records for any batch, a Python step per row: every row checked as prediction_request checks one record.

    A row in the usual shape (a JSON object with a string type, float coordinates or none, and a
    string date) is gathered with a few type tests, and its coordinates and date are then checked
    for the whole batch at once. Any other row, and any that fails a bulk check, goes through
    prediction_request itself, so a failure names the same field with the same message.
    """
    checked, slow = CheckedRows(), []
    gathered: list[int] = []
    kinds: list[str] = []
    lats: list[float | None] = []
    lons: list[float | None] = []
    dates: list[str] = []
    for index, row in enumerate(rows):
        if type(row) is dict and row.keys() <= _RECORD_FIELD_SET:
            kind, lat, lon, date = row.get("complaint_type"), row.get("lat"), row.get("lon"), row.get("date")
            if type(kind) is str and len(kind) <= MAX_TYPE_LENGTH and kind.strip():
                plain = (lat is None and lon is None) or (type(lat) is float and type(lon) is float)
                if plain and date is None and lat is None:
                    checked.median_rows.append(index)
                    checked.median_types.append(_canonical_type(kind))
                    continue
                if plain and type(date) is str:
                    gathered.append(index)
                    kinds.append(_canonical_type(kind))
                    lats.append(lat)
                    lons.append(lon)
                    dates.append(date.strip())
                    continue
        slow.append(index)
    if gathered:
        stamps = parse_timestamps(dates)
        sane = (stamps >= _FIRST_STAMP) & (stamps < _END_STAMP)  # NaT compares False: unparsed dates fail too
        fine = _in_range(lats, LATITUDE_RANGE) & _in_range(lons, LONGITUDE_RANGE) & sane
        keep = fine.tolist() if not fine.all() else None
        checked.model_rows = gathered if keep is None else [v for v, ok in zip(gathered, keep) if ok]
        checked.complaint_types = kinds if keep is None else [v for v, ok in zip(kinds, keep) if ok]
        checked.lats = lats if keep is None else [v for v, ok in zip(lats, keep) if ok]
        checked.lons = lons if keep is None else [v for v, ok in zip(lons, keep) if ok]
        checked.stamps = list(stamps if keep is None else stamps[fine])
        slow += [] if keep is None else [v for v, ok in zip(gathered, keep) if not ok]
    for index in slow:
        try:
            if not isinstance(rows[index], dict):
                raise ApiError("Each record must be a JSON object")
            checked.add(index, prediction_request(rows[index]))
        except ApiError as error:
            checked.failures.append((index, error))
    return checked


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
        document = decode_payload(document["payload"], max_decoded_bytes, max_json_values(max_rows))
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
