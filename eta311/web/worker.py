"""The Gunicorn worker: gevent, so a slow client holds a greenlet and not a thread, a drain that drops no
request, and JSON for the requests Gunicorn itself refuses."""

from __future__ import annotations

import html
import json
import re
import socket
import time
from functools import partial
from http import HTTPStatus

import gevent
from gevent.monkey import get_original
from gevent.pool import Pool
from gevent.server import StreamServer
from gunicorn.http.message import Request
from gunicorn.workers.ggevent import GeventWorker

from eta311.errors import ApiError

# After SIGTERM a kept-alive connection idle this long is closed: long enough for a request its
# client already sent to arrive and be answered with "Connection: close", short enough to exit
# well inside Heroku's 30 s between SIGTERM and SIGKILL.
STOP_IDLE_LINGER_SECONDS = 2.0
TICK_SECONDS = 0.1
# The blocking select: called from gevent's hub, which must never wait on anything.
_select = get_original("select", "select")


def has_bytes_waiting(sock: socket.socket) -> bool:
    """True if the client sent something not read yet: closing now would answer it with a reset."""
    try:
        readable, _, _ = _select([sock], [], [], 0)
    except (OSError, ValueError):
        return False
    return bool(readable)


# Gunicorn's error page: its status line, and the message between the heading and the end of the body.
_STATUS_LINE = re.compile(rb"HTTP/1\.1 (\d{3}) ([^\r\n]*)")
_MESSAGE = re.compile(rb"</h1>(.*)</body>", re.DOTALL)
MAX_PROBLEM_CHARS = 300


class JsonErrorSocket:
    """Stands in for the client's socket while Gunicorn answers a request it could not parse (a URL
    over its 4,094-byte request line, a malformed header, a bad chunk size), so that its HTML error
    page goes out as the service's JSON failure with the same status.

    Gunicorn writes that page in one sendall; the status, reason and message are read back from it
    rather than worked out again here, so every refusal Gunicorn knows keeps its own status.
    """

    def __init__(self, sock: socket.socket):
        self._sock = sock

    def __getattr__(self, name: str) -> object:
        return getattr(self._sock, name)

    def sendall(self, data: bytes) -> None:
        self._sock.sendall(json_error_response(data))


def json_error_response(page: bytes) -> bytes:
    """Gunicorn's whole HTML error response rewritten as JSON; anything else is passed on unchanged."""
    status = _STATUS_LINE.match(page)
    if status is None:
        return page
    code = status.group(1).decode()
    # Gunicorn keeps "Bad Request" as the reason when it picks another status (501 for an unknown
    # transfer coding): the reason goes with the code.
    try:
        reason = HTTPStatus(int(code)).phrase
    except ValueError:
        reason = status.group(2).decode("latin-1")
    message = _MESSAGE.search(page)
    detail = html.unescape(message.group(1).decode("latin-1")).strip() if message else ""
    problem = f"{reason}: {detail}" if detail else reason
    if len(problem) > MAX_PROBLEM_CHARS:
        problem = problem[: MAX_PROBLEM_CHARS - 3] + "..."
    body = (json.dumps(ApiError(problem).body(), separators=(",", ":")) + "\n").encode()  # as the app writes it
    head = (
        f"HTTP/1.1 {code} {reason}\r\nConnection: close\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode("latin-1") + body


class ListenerName:
    """Stands in for a listener in a handler: Gunicorn asks it only for its address, which a closed socket no longer has."""

    def __init__(self, listener: socket.socket):
        self.address = listener.getsockname()

    def getsockname(self) -> tuple:
        return self.address


class IdleWait:
    """The wait for a connection's next request: marks it idle, and bounds it by keepalive (or the linger)."""

    def __init__(self, worker: DrainingGeventWorker):
        self.worker = worker
        self.timeout: gevent.Timeout | None = None

    def __enter__(self) -> IdleWait:
        self.since = time.monotonic()
        self.worker.idle[gevent.getcurrent()] = self
        limit = self.worker.cfg.keepalive if self.worker.alive else STOP_IDLE_LINGER_SECONDS
        self.timeout = gevent.Timeout(limit, False)  # False: the wait just ends, the connection closes
        self.timeout.start()
        return self

    def __exit__(self, *exc: object) -> bool:
        self.worker.idle.pop(gevent.getcurrent(), None)
        return self.timeout.__exit__(*exc)


class DrainingGeventWorker(GeventWorker):
    """Gunicorn's gevent worker with a drain that fails no request on SIGTERM.

    Gunicorn's own run loop leaves a kept-alive connection waiting for its next request for the
    whole keepalive (95 s): on SIGTERM it sits out graceful_timeout and then kills those
    connections, and connections still queued on the listener are reset when it closes. Here,
    once SIGTERM arrives, every answer says "Connection: close" (Gunicorn does that when `alive`
    is False), the listener's queue is served before it closes, and a connection that has sent
    nothing for STOP_IDLE_LINGER_SECONDS is closed while no byte of a request waits on it.
    """

    def init_process(self) -> None:
        self.idle: dict[gevent.Greenlet, IdleWait] = {}  # greenlets waiting for their next request
        self.clients: dict[gevent.Greenlet, object] = {}
        self.last_requests: dict[gevent.Greenlet, Request] = {}  # each connection's latest request
        super().init_process()

    def timeout_ctx(self) -> IdleWait:
        return IdleWait(self)

    def handle(self, listener: ListenerName, client: socket.socket, addr: tuple) -> None:
        me = gevent.getcurrent()
        self.clients[me] = client
        try:
            super().handle(listener, client, addr)
        finally:
            self.clients.pop(me, None)
            self.last_requests.pop(me, None)

    def handle_error(self, req: Request | None, client: socket.socket, addr: tuple, exc: BaseException) -> None:
        answered = self.last_requests.get(gevent.getcurrent())
        if req is None and answered is not None and getattr(answered.body, "failed", False):
            # Gunicorn met a broken chunk or trailer while skipping what the app left unread of a
            # request it has already answered: a second answer would be read as the next request's.
            # (Gunicorn marks such a body failed; a bad header of a next request leaves it unmarked.)
            self.log.warning("Closed a connection whose last request body could not be read: %s", exc)
            return
        super().handle_error(req, JsonErrorSocket(client), addr, exc)

    def handle_request(self, listener_name: tuple, req: Request, sock: socket.socket, addr: tuple) -> bool:
        self.last_requests[gevent.getcurrent()] = req
        kept_alive = super().handle_request(listener_name, req, sock, addr)
        # A kept-alive client can send its next request before this greenlet ever blocks, so one
        # busy connection would be served back to back and starve the rest (p99 at c=8 on one
        # core: 150-220 ms without this, 14 ms with it). Wait for the loop to go idle: every other
        # ready connection is served first.
        gevent.idle()
        return kept_alive

    def run(self) -> None:
        servers = []
        for listener in self.sockets:
            listener.setblocking(1)
            # Handlers that start after the listener closed (the drain serves its queue) still need its address.
            handle = partial(self.handle, ListenerName(listener))
            server = StreamServer(listener, handle=handle, spawn=Pool(self.worker_connections))
            if self.cfg.workers > 1:
                server.max_accept = 1  # let sibling workers take their share of a burst
            server.start()
            servers.append(server)
        last_notify = 0.0
        while self.alive:
            if time.monotonic() - last_notify >= 1.0:
                self.notify()
                last_notify = time.monotonic()
            gevent.sleep(TICK_SECONDS)
        for listener, server in zip(self.sockets, servers):
            self.serve_backlog(listener, server)
            server.close()
        self.drain(servers)

    def serve_backlog(self, listener: socket.socket, server: StreamServer) -> None:
        """Take the connections already queued on the listener: closing it would reset them."""
        listener.setblocking(0)
        while True:
            try:
                client, addr = listener.accept()
            except OSError:  # nothing left (EAGAIN), or the socket is gone
                return
            client.setblocking(1)
            server.pool.spawn(self.handle, ListenerName(listener), client, addr)

    def drain(self, servers: list[StreamServer]) -> None:
        """Finish in-flight requests; close idle kept-alive connections; give up at graceful_timeout."""
        deadline = time.monotonic() + self.cfg.graceful_timeout
        while any(server.pool.free_count() != server.pool.size for server in servers):
            now = time.monotonic()
            if now > deadline:
                self.log.warning("Worker graceful timeout (pid:%s)", self.pid)
                for server in servers:
                    server.stop(timeout=1)
                return
            for greenlet, wait in list(self.idle.items()):
                if now - wait.since >= STOP_IDLE_LINGER_SECONDS:
                    gevent.get_hub().loop.run_callback(self.end_idle_wait, greenlet, wait)
            self.notify()
            gevent.sleep(TICK_SECONDS)

    def end_idle_wait(self, greenlet: gevent.Greenlet, wait: IdleWait) -> None:
        """In the hub, while that greenlet is parked: end its wait as its own timeout would (the socket closes)."""
        client = self.clients.get(greenlet)
        if self.idle.get(greenlet) is not wait or client is None or has_bytes_waiting(client):
            return  # it moved on to a request, or one is arriving: let it be answered
        self.idle.pop(greenlet, None)
        greenlet.throw(wait.timeout)  # IdleWait swallows its own timeout; the handler closes with a FIN
