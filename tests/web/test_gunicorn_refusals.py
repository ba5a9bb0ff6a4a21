"""What Gunicorn does before the app: its refusals answer in the service's JSON; no header re-routes or is misread."""

from __future__ import annotations

import gzip
import json
import socket

import pytest
import requests

from eta311.web.worker import MAX_PROBLEM_CHARS, json_error_response


def raw_answer(base: str, request: bytes, half_close: bool = False) -> bytes:
    """Send bytes as they are (no HTTP library would send these) and read the whole answer; half_close:
    then say the client will send nothing more, as one that gave up mid-body does."""
    host, port = base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as conn:
        conn.sendall(request)
        if half_close:
            conn.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := conn.recv(65536):
            answer += chunk
    return answer


def raw_exchange(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """raw_answer's status, headers (lower-case names) and body."""
    head, _, body = raw_answer(base, request).partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return int(status_line.split()[1]), {k.lower(): v for k, v in headers.items()}, body


REFUSED = [
    (
        "a URL past the request-line limit",
        b"GET /predict/rodent?x=" + b"a" * 5000 + b" HTTP/1.1\r\nHost: x\r\n\r\n",
        414,
    ),
    ("a request line that is not HTTP", b"HELLO THERE\r\n\r\n", 400),
    ("a header name with a space", b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n", 400),
    (
        "more headers than allowed",
        b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(120)) + b"\r\n",
        431,
    ),
    ("a request line of spaces", b"   \r\n\r\n", 400),
]
CHUNKED_POST = (
    b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
)


@pytest.fixture(scope="module")
def service():
    from live import procfile_web

    with procfile_web() as (base, process):
        yield base, process


@pytest.mark.parametrize("name, request_bytes, status", REFUSED, ids=[r[0] for r in REFUSED])
def test_a_request_gunicorn_refuses_is_answered_in_json(service, name, request_bytes, status):
    base, _ = service
    code, headers, body = raw_exchange(base, request_bytes)
    assert code == status
    assert headers["content-type"] == "application/json" and int(headers["content-length"]) == len(body)
    answer = json.loads(body)
    assert answer["status"] == "failure" and answer["success"] is False
    assert body == json.dumps(answer, separators=(",", ":")).encode() + b"\n"  # written as the app writes its own
    assert answer["problem"] and len(answer["problem"]) <= MAX_PROBLEM_CHARS
    assert requests.get(f"{base}/health", timeout=5).status_code == 200  # and the worker serves on


@pytest.mark.parametrize(
    "body",
    [b"zz\r\n{}\r\n0\r\n\r\n", b"2\r\n{}XX0\r\n\r\n", b"2;\x01\r\n{}\r\n0\r\n\r\n"],
    ids=["size not hex", "chunk without its CRLF", "control byte in an extension"],
)
def test_a_badly_chunked_body_is_one_json_400_and_the_connection_closes(service, body):
    # The body's reader raised inside the app, which answered 500.
    base, _ = service
    code, headers, answer = raw_exchange(base, CHUNKED_POST + body)
    assert code == 400 and int(headers["content-length"]) == len(answer)  # one answer, then the close
    assert json.loads(answer)["problem"].startswith("The request body could not be read")


@pytest.mark.parametrize(
    "body",
    [
        b"zz\r\n{}\r\n0\r\n\r\n",
        b"2\r\n{}\r\n0\r\nbad trailer line\r\n\r\n",
        b"2\r\n{}\r\n0\r\nContent-Length: 5\r\n\r\n",
    ],
    ids=["size not hex", "trailer without a colon", "a framing header as a trailer"],
)
def test_a_broken_chunked_body_the_route_never_reads_gets_that_route_s_answer_alone(service, body):
    # Gunicorn meets the error while skipping the unread body before the next request, and used to
    # write a second, unasked-for answer on the connection: a kept-alive client would take it for the
    # answer to its next request.
    base, _ = service
    request = b"GET /health HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    code, headers, answer = raw_exchange(base, request)
    assert code == 200 and int(headers["content-length"]) == len(answer)  # one answer, then the close
    assert json.loads(answer)["status"] == "ok"


def test_a_bad_header_on_the_next_kept_alive_request_still_gets_its_own_400(service):
    base, _ = service
    first = b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n"
    code, _, answers = raw_exchange(base, first + b"GET /health HTTP/1.1\r\nHost: x\r\nBad Name: 1\r\n\r\n")
    assert code == 200
    second = answers[answers.index(b"HTTP/1.1 ") :]
    assert second.startswith(b"HTTP/1.1 400 Bad Request\r\n") and b"application/json" in second


def test_a_good_chunked_body_is_still_read(service):
    base, _ = service
    body = b'{"complaint_type": "Rodent"}'
    chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    request = CHUNKED_POST.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n") + chunks
    code, _, answer = raw_exchange(base, request)
    assert code == 200 and json.loads(answer)["complaint_type"] == "rodent"


def test_the_problem_is_plain_text_and_bounded_whatever_the_client_sent():
    page = (
        b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n"
        b"<html><body><h1><p>Bad Request</p></h1>Invalid Request Line '&lt;b&gt;&quot;"
        + b"x" * 1000
        + b"'</body></html>"
    )
    head, _, body = json_error_response(page).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 Bad Request\r\n") and head.endswith(b"Content-Length: %d" % len(body))
    problem = json.loads(body)["problem"]
    assert problem.startswith("Bad Request: Invalid Request Line '<b>\"x") and len(problem) == MAX_PROBLEM_CHARS
    assert json_error_response(b"not a status line") == b"not a status line"


@pytest.mark.parametrize("script_name", ["/zzz", "/predict"])
def test_a_client_s_script_name_header_neither_fails_nor_reroutes_the_request(service, script_name):
    # Gunicorn trusted SCRIPT_NAME from every address (forwarded_allow_ips is "*"): "/zzz" was its
    # "500 Bad Request", "/predict" turned GET /predict/rodent into a 404 for /rodent.
    base, _ = service
    request = b"GET /predict/rodent HTTP/1.1\r\nHost: x\r\nSCRIPT_NAME: %s\r\nConnection: close\r\n\r\n"
    code, headers, answer = raw_exchange(base, request % script_name.encode())
    assert code == 200 and headers["content-type"] == "application/json"
    assert json.loads(answer)["complaint_type"] == "rodent"


def test_the_reason_phrase_goes_with_the_status_gunicorn_chose():
    # Gunicorn answers an unknown transfer coding with 501 but keeps "Bad Request" as its reason.
    page = (
        b"HTTP/1.1 501 Bad Request\r\nConnection: close\r\nContent-Type: text/html\r\nContent-Length: 9\r\n\r\n"
        b"<html><body><h1><p>Bad Request</p></h1>Unsupported transfer coding: 'xchunked'</body></html>"
    )
    head, _, body = json_error_response(page).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert json.loads(body)["problem"] == "Not Implemented: Unsupported transfer coding: 'xchunked'"


def test_an_unknown_transfer_coding_is_a_json_501_not_implemented(service):
    base, _ = service
    request = b"POST /predict HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\nContent-Length: 2\r\n\r\n{}"
    answer = raw_answer(base, request)
    assert answer.startswith(b"HTTP/1.1 501 Not Implemented\r\n")
    assert json.loads(answer.partition(b"\r\n\r\n")[2])["status"] == "failure"


@pytest.mark.parametrize("coding", [b"gzip, chunked", b"deflate,chunked"])
def test_a_transfer_coding_gunicorn_passes_on_undecoded_is_refused_not_misread(service, coding):
    # Gunicorn undoes the chunking only: the app read the gzip bytes as JSON (a 400 blaming the JSON),
    # and a plain body claiming gzip was read as if the claim were not there (a 200).
    base, _ = service
    plain = b'{"complaint_type": "Rodent"}'
    for body in (plain, gzip.compress(plain)):
        chunks = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        request = CHUNKED_POST.replace(b"Transfer-Encoding: chunked", b"Transfer-Encoding: " + coding) + chunks
        code, _, answer = raw_exchange(base, request.replace(b"Host: x\r\n", b"Host: x\r\nConnection: close\r\n"))
        assert code == 415 and json.loads(answer)["problem"].startswith("Transfer-Encoding")


def test_a_body_the_client_cut_short_of_its_content_length_is_a_400(service):
    base, _ = service
    body = b'{"complaint_type": "Rodent"}'  # whole JSON, but the client declared more and then closed
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
    answer = raw_answer(base, head % (len(body) + 50) + body, half_close=True)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert "ended after" in json.loads(answer.partition(b"\r\n\r\n")[2])["problem"]


def test_an_absolute_form_request_line_without_a_path_is_answered_at_the_root(service):
    base, _ = service
    request = b"GET http://x?msg=1 HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n"
    code, headers, answer = raw_exchange(base, request)
    assert code == 200 and headers["content-type"] == "application/json" and "location" not in headers
    assert json.loads(answer)["service"] == "311 ETA"
