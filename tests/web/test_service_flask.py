"""ServiceFlask: the coroutine check made once per function, Flask's own answers, an empty path read as the root."""

import asyncio

import pytest
from flask import Flask

from eta311.web.app import ServiceFlask


def test_a_plain_function_is_checked_once_and_returned_as_flask_returns_it(monkeypatch):
    app = ServiceFlask("probe")
    asked = []
    original = Flask.ensure_sync

    def counting(self, func):
        asked.append(func)
        return original(self, func)

    monkeypatch.setattr(Flask, "ensure_sync", counting)

    def hook():
        return "answer"

    assert app.ensure_sync(hook) is hook
    assert app.ensure_sync(hook) is hook
    assert asked == [hook]


def test_a_coroutine_is_handed_to_flask_every_time():
    app, plain = ServiceFlask("probe"), Flask("probe")

    async def view():
        return "answer"

    assert asyncio.iscoroutinefunction(view)
    for _ in range(2):  # Flask wraps it (or, without its async extra, refuses it) on every call
        with pytest.raises(Exception) as ours:
            app.ensure_sync(view)()
        with pytest.raises(Exception) as flasks:
            plain.ensure_sync(view)()
        assert type(ours.value) is type(flasks.value) and str(ours.value) == str(flasks.value)
    assert view not in app._plain_functions


def test_bound_methods_are_not_kept_so_a_view_made_per_request_is_not_held():
    app = ServiceFlask("probe")

    class View:
        def dispatch(self):
            return "answer"

    for _ in range(3):
        method = View().dispatch
        assert app.ensure_sync(method) is method
    assert not app._plain_functions


def test_hooks_and_views_still_run_in_order_on_every_request():
    app = ServiceFlask("probe")
    seen = []
    app.before_request(lambda: seen.append("before"))
    app.after_request(lambda response: seen.append("after") or response)
    app.get("/")(lambda: seen.append("view") or "ok")
    client = app.test_client()
    for _ in range(2):
        assert client.get("/").get_data() == b"ok"
    assert seen == ["before", "view", "after"] * 2


@pytest.mark.parametrize("query", ["", "msg=hi"])
def test_an_empty_path_is_the_root_not_a_redirect_to_the_host_header_s_site(client, query):
    # Gunicorn passes "GET http://host HTTP/1.1" on with an empty PATH_INFO; werkzeug answered a 308
    # to http://<Host header>/ with an HTML body.
    reply = client.get("/", query_string=query, headers={"Host": "evil.example"}, environ_overrides={"PATH_INFO": ""})
    assert reply.status_code == 200 and reply.mimetype == "application/json"
    assert reply.get_json()["service"] == "311 ETA" and "Location" not in reply.headers
