"""The pages for people: / negotiated between the page and the JSON index, the policy, /docs, the offline map."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest
from live import ROOT

from eta311.web.pages import MAP_GRID, prefers_html

STATIC = ROOT / "eta311" / "web" / "static"


@pytest.mark.parametrize(
    "accept, html",
    [
        (None, False),
        ("*/*", False),
        ("application/json", False),
        ("application/json, text/html;q=0.5", False),
        ("text/html", True),
        ("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # Chromium's
    ],
)
def test_index_is_json_unless_html_is_preferred(app, client, accept, html):
    headers = {"Accept": accept} if accept else {}
    reply = client.get("/", headers=headers)
    assert reply.mimetype == ("text/html" if html else "application/json")
    assert "Accept" in reply.headers["Vary"]
    with app.test_request_context("/", headers=headers):
        assert prefers_html() is html


def test_page_lists_the_model_types_and_holds_a_strict_policy(app, client):
    page = client.get("/", headers={"Accept": "text/html"})
    policy = page.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "default-src 'none'" in policy
    text = page.get_data(as_text=True)
    card = client.get("/model").get_json()
    assert text.count("<option ") == len(card["complaint_types"])
    assert "<script>" not in text and " style=" not in text and " on" + "click=" not in text
    for asset in ("/static/page.js", "/static/page.css", "/static/map.svg"):
        assert asset in text and client.get(asset).status_code == 200


def test_docs_serve_swagger_ui_from_the_package_and_nothing_else(client):
    page = client.get("/docs")
    assert page.status_code == 200 and "/docs/swagger-ui-bundle.js" in page.get_data(as_text=True)
    assert client.get("/docs/swagger-ui-bundle.js").data.startswith(b"/*!")
    assert client.get("/docs/index.html").status_code == 404  # only the files the page loads
    assert client.get("/docs/../../../etc/passwd").status_code == 404


def test_the_committed_map_and_its_grid_agree():
    svg = (STATIC / "map.svg").read_text()
    size = re.search(r"`eta311/web/static/map.svg` \((\d+) KiB", (ROOT / "README.md").read_text())
    assert size and int(size.group(1)) == round(len(svg) / 1024)  # the figure build_map.py printed
    assert f'viewBox="0 0 {MAP_GRID["width"]} {MAP_GRID["height"]}"' in svg
    assert "http" not in svg.replace("http://www.w3.org/2000/svg", "")  # nothing fetched from elsewhere


def test_build_map_draws_every_borough_on_the_same_grid(tmp_path):
    done = subprocess.run(
        [sys.executable, "scripts/build_map.py", "--data", "tests/fixtures/nyc311", "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "map.json").read_text()) == MAP_GRID  # the page's grid does not depend on the data
    paths = re.findall(
        r'<path fill="(#[0-9a-f]{6})" fill-opacity="[0-9.]+" d="([^"]*)"/>', (tmp_path / "map.svg").read_text()
    )
    assert len(paths) == 5 and all(d.startswith("M") for _, d in paths), paths


def test_build_map_says_folder_not_found(tmp_path):
    done = subprocess.run(
        [sys.executable, "scripts/build_map.py", "--data", str(tmp_path / "nowhere"), "--out", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "folder not found" in done.stderr


@pytest.mark.parametrize("path", ["/static/page.js", "/docs/swagger-ui.css"])
def test_a_failed_if_match_on_a_file_is_the_json_failure_not_the_file(client, path):
    # werkzeug answered 412 with the whole file as the body of its refusal
    reply = client.get(path, headers={"If-Match": '"not-this-one"'})
    assert reply.status_code == 412 and reply.mimetype == "application/json"
    assert reply.get_json()["status"] == "failure" and reply.get_json()["success"] is False
    etag = client.get(path).headers["ETag"]
    assert client.get(path, headers={"If-Match": etag}).status_code == 200  # a match is still served
