"""Every error the API answers with: its HTTP status and a plain-English problem."""

from __future__ import annotations


class ApiError(Exception):
    """An answer of {"status": "failure", "success": false, "problem": ...} with an HTTP status."""

    status_code = 400
    headers: dict[str, str] = {}

    def __init__(self, problem: str, **details: object) -> None:
        super().__init__(problem)
        self.problem = problem
        self.details = details

    def body(self) -> dict:
        return {"status": "failure", "success": False, "problem": self.problem, **self.details}


class BadRequest(ApiError):
    status_code = 400


class InvalidField(BadRequest):
    """A named field is missing, of the wrong type or out of range."""

    def __init__(self, field: str, problem: str) -> None:
        super().__init__(problem, field=field)


class UnknownComplaintType(BadRequest):
    def __init__(self, complaint_type: str) -> None:
        super().__init__("Complaint type is not in database", complaint_type=complaint_type)


class NotFound(ApiError):
    status_code = 404


class PayloadTooLarge(ApiError):
    status_code = 413


class UnsupportedMediaType(ApiError):
    status_code = 415


class Unavailable(ApiError):
    status_code = 503


class Unauthorized(ApiError):
    status_code = 401
    # A 401 must name the scheme that would pass (RFC 9110); both keys and the metrics token go as Bearer.
    headers = {"WWW-Authenticate": 'Bearer realm="311 ETA"'}


class Forbidden(ApiError):
    status_code = 403


class TooManyRequests(ApiError):
    status_code = 429

    def __init__(self, problem: str, retry_after: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(problem, retry_after=retry_after)
        self.headers = {**(headers or {}), "Retry-After": str(retry_after)}
