"""The pages in a real browser: headless Debian chromium, driven by Selenium, against the Procfile service.

One service (keys on, one second origin allowed by CORS) and one browser serve every test here;
screenshots go to screenshots/ (the README's picture is a copy of estimate.png).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import tempfile
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import live
import pytest
import requests
from test_api import real_png

from eta311.plans import PLANS
from eta311.web.gate.keys import FileKeys, new_key

pytest.importorskip("selenium", reason="pip install -r requirements-dev.txt")
from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions as ready  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
SCREENSHOTS = live.ROOT / "screenshots"
# Running as root needs --no-sandbox; the rest keep a headless run from calling out or lingering.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--window-size=1400,1000",
]
WAIT_SECONDS = 30  # an upper bound on a loaded machine, not a speed assertion
CORS_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>another origin</title><script src="/cors.js"></script></head>
<body><pre id="out"></pre></body></html>
"""
# From another origin: a keyed GET (preflighted for x-api-key) that reads an exposed rate-limit
# header, a JSON POST (preflighted for Content-Type), and a keyless GET whose 401 it can read.
CORS_SCRIPT = """
(async () => {
  const api = new URLSearchParams(location.search).get("api");
  const key = new URLSearchParams(location.search).get("key");
  const out = {};
  try {
    const keyed = await fetch(api + "/predict/residential", {headers: {"x-api-key": key}});
    out.keyed = {status: keyed.status, remaining: keyed.headers.get("RateLimit-Remaining"), body: await keyed.json()};
    const posted = await fetch(api + "/predict", {method: "POST", headers: {"Content-Type": "application/json",
      "Authorization": "Bearer " + key}, body: JSON.stringify({complaint_type: "residential"})});
    out.posted = {status: posted.status, body: await posted.json()};
    const keyless = await fetch(api + "/predict/residential");
    out.keyless = {status: keyless.status, body: await keyless.json()};
  } catch (error) {
    out.blocked = String(error);
  }
  document.getElementById("out").textContent = JSON.stringify(out);
})();
"""


@pytest.fixture(scope="module")
def other_origin() -> Iterator[int]:
    """A second local web server whose page calls the API from another origin."""
    folder = Path(tempfile.mkdtemp(prefix="cors-page-"))
    (folder / "index.html").write_text(CORS_PAGE)
    (folder / "cors.js").write_text(CORS_SCRIPT)
    handler = partial(SimpleHTTPRequestHandler, directory=str(folder))
    handler.log_message = lambda *args: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()
        shutil.rmtree(folder)


@pytest.fixture(scope="module")
def service(other_origin, tmp_path_factory) -> Iterator[tuple[str, str]]:
    """The Procfile's web process with keys on and CORS for the other origin; yields (base URL, key)."""
    keys_file = tmp_path_factory.mktemp("keys") / "keys.json"
    key, record = new_key("browser test", PLANS["partner"])
    FileKeys(keys_file).put(record)
    with live.procfile_web(API_KEYS_FILE=str(keys_file), CORS_ORIGINS=f"http://127.0.0.1:{other_origin}") as (base, _):
        yield base, key


@pytest.fixture(scope="module")
def browser(tmp_path_factory) -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.fail("Debian's chromium and chromium-driver are missing: `make browser` installs them")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = Service(str(CHROMEDRIVER))
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(WAIT_SECONDS)
    SCREENSHOTS.mkdir(exist_ok=True)
    try:
        yield driver
    finally:
        started = live.descendants(service.process.pid) if service.process else []
        driver.quit()
        for pid in started:  # a chromium helper that outlived quit() is ended here, by its own pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def wait(driver, condition):
    try:
        return WebDriverWait(driver, WAIT_SECONDS).until(condition)
    except Exception:
        driver.save_screenshot(str(SCREENSHOTS / "failed.png"))
        print(driver.get_log("browser"))
        raise


def open_page(driver, url: str) -> None:
    """Load url and wait for page.js to be wired up; log lines of earlier pages are dropped first."""
    driver.get_log("browser")
    driver.get(url)
    wait(driver, lambda d: d.find_element(By.TAG_NAME, "body").get_attribute("data-ready") == "yes")


def console_errors(driver) -> list[str]:
    """Errors the page logged: a Content-Security-Policy refusal shows up here."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def click_map_at(driver, lat: float, lon: float) -> None:
    """Click the map's pixel for a place, from the grid the page itself was drawn with."""
    svg = driver.find_element(By.ID, "map")
    grid = {name: float(svg.get_attribute(f"data-{name}")) for name in ("west", "north", "cell-lon", "cell-lat")}
    width, height = (float(v) for v in svg.get_dom_attribute("viewBox").split()[2:])
    x = (lon - grid["west"]) / grid["cell-lon"] * svg.size["width"] / width
    y = (grid["north"] - lat) / grid["cell-lat"] * svg.size["height"] / height
    offset = (round(x - svg.size["width"] / 2), round(y - svg.size["height"] / 2))  # Selenium 4: from the centre
    ActionChains(driver).move_to_element_with_offset(svg, *offset).click().perform()


def test_page_picks_a_type_clicks_the_map_and_shows_the_estimate(service, browser):
    base, key = service
    open_page(browser, f"{base}/")
    assert browser.title.startswith("311 ETA")

    browser.find_element(By.ID, "type-filter").send_keys("resid")
    select = Select(browser.find_element(By.ID, "complaint-type"))
    visible = [o.get_attribute("value") for o in select.options if not o.get_property("hidden")]
    assert "noise - residential" in visible and all("resid" in v for v in visible)
    select.select_by_value("noise - residential")

    click_map_at(browser, 40.6366, -73.9517)  # Flatbush, Brooklyn
    lat = float(browser.find_element(By.ID, "lat").get_attribute("value"))
    lon = float(browser.find_element(By.ID, "lon").get_attribute("value"))
    assert abs(lat - 40.6366) < 0.005 and abs(lon - -73.9517) < 0.005, (lat, lon)
    when = browser.find_element(By.ID, "when").get_attribute("value")  # the default: now, in New York
    new_york = ZoneInfo("America/New_York")
    shown = datetime.strptime(when, "%Y-%m-%dT%H:%M").replace(tzinfo=new_york)
    assert abs(datetime.now(new_york) - shown) < timedelta(minutes=15), when  # New York's clock, not UTC

    browser.find_element(By.ID, "api-key").send_keys(key)
    browser.find_element(By.ID, "submit").click()
    wait(browser, lambda d: d.find_element(By.ID, "result").get_attribute("data-hours"))
    hours = float(browser.find_element(By.ID, "result").get_attribute("data-hours"))

    direct = requests.get(
        f"{base}/predict/noise - residential",
        params={"lat": f"{lat:.6f}", "lon": f"{lon:.6f}", "date": when.replace("T", " ") + ":00"},
        headers={"x-api-key": key},
        timeout=10,
    ).json()
    assert hours == direct["estimated_time"]
    assert browser.find_element(By.ID, "version").text == direct["model_version"]
    assert browser.find_element(By.ID, "interval").text.count(" to ") == 1
    median = requests.get(f"{base}/predict/residential", headers={"x-api-key": key}, timeout=10).json()
    assert browser.find_element(By.ID, "median").text.endswith(f"({median['model_version']})")
    assert browser.find_element(By.ID, "error").is_displayed() is False
    assert console_errors(browser) == []
    browser.save_screenshot(str(SCREENSHOTS / "estimate.png"))


def test_page_without_a_key_says_what_is_wrong(service, browser):
    base, _ = service
    open_page(browser, f"{base}/")
    Select(browser.find_element(By.ID, "complaint-type")).select_by_value("heat/hot water")
    click_map_at(browser, 40.85, -73.90)
    browser.find_element(By.ID, "submit").click()
    error = wait(browser, ready.visibility_of_element_located((By.ID, "error")))
    assert "API key" in error.text
    # The browser logs the refused fetch as an error, sometimes only after this point: take it from
    # the log here, or it can land in the next test's console check.
    logged: list[dict] = []
    wait(browser, lambda d: logged.extend(d.get_log("browser")) or any(" 401 " in e["message"] for e in logged))


def test_echo_panel_round_trips_an_image_byte_for_byte(service, browser, tmp_path):
    base, key = service
    png = real_png(48, 32)
    picture = tmp_path / "picture.png"
    picture.write_bytes(png)
    open_page(browser, f"{base}/")
    browser.find_element(By.ID, "api-key").send_keys(key)
    browser.find_element(By.ID, "echo-file").send_keys(str(picture))
    browser.find_element(By.ID, "echo-send").click()
    status = wait(browser, lambda d: d.find_element(By.ID, "echo-status").get_attribute("data-sha256"))
    assert status == hashlib.sha256(png).hexdigest()
    assert "identical" in browser.find_element(By.ID, "echo-status").text
    image = browser.find_element(By.ID, "echo-image")
    assert browser.execute_script("return arguments[0].naturalWidth", image) == 48  # the browser decoded it
    assert console_errors(browser) == []
    browser.save_screenshot(str(SCREENSHOTS / "echo.png"))


def test_docs_try_it_out_executes_a_call(service, browser):
    base, key = service
    browser.get_log("browser")
    browser.get(f"{base}/docs")
    wait(browser, ready.element_to_be_clickable((By.CSS_SELECTOR, "button.authorize")))
    browser.find_element(By.CSS_SELECTOR, "button.authorize").click()
    field = wait(browser, ready.visibility_of_element_located((By.CSS_SELECTOR, ".auth-container input")))
    field.send_keys(key)
    browser.find_element(By.CSS_SELECTOR, ".auth-container button.authorize").click()
    browser.find_element(By.CSS_SELECTOR, "button.btn-done").click()

    path = browser.find_element(By.CSS_SELECTOR, '.opblock-summary-path[data-path="/predict/{complaint_type}"]')
    operation = path.find_element(By.XPATH, "ancestor::div[contains(@class, 'opblock ')]")
    path.click()
    wait(browser, lambda d: operation.find_element(By.CSS_SELECTOR, "button.try-out__btn")).click()
    operation.find_element(By.CSS_SELECTOR, 'tr[data-param-name="complaint_type"] input').send_keys("residential")
    operation.find_element(By.CSS_SELECTOR, "button.execute").click()
    body = wait(browser, lambda d: operation.find_element(By.CSS_SELECTOR, ".live-responses-table .microlight"))
    answer = json.loads(body.text)
    assert answer["status"] == "success" and answer["complaint_type"] == "noise - residential"
    request_url = operation.find_element(By.CSS_SELECTOR, ".request-url pre").text
    assert request_url.startswith(f"{base}/predict/residential")
    status = operation.find_element(By.CSS_SELECTOR, ".live-responses-table tbody .response-col_status").text
    assert status.strip().startswith("200")
    assert [e for e in console_errors(browser) if "Content Security Policy" in e] == []
    browser.save_screenshot(str(SCREENSHOTS / "docs.png"))


def test_a_page_on_an_allowed_origin_calls_the_api_and_others_are_refused(service, browser, other_origin):
    base, key = service
    browser.get(f"http://127.0.0.1:{other_origin}/index.html?api={base}&key={key}")
    out = json.loads(wait(browser, lambda d: d.find_element(By.ID, "out").text))
    assert out["keyed"]["status"] == 200 and out["keyed"]["body"]["complaint_type"] == "noise - residential"
    assert out["keyed"]["remaining"] is not None and int(out["keyed"]["remaining"]) > 0  # an exposed header
    assert out["posted"]["status"] == 200 and out["posted"]["body"]["model"] == "medians"
    assert out["keyless"]["status"] == 401 and "API key" in out["keyless"]["body"]["problem"]

    # Same server, another name: another origin, not in CORS_ORIGINS, so the browser withholds the answer.
    browser.get(f"http://localhost:{other_origin}/index.html?api={base}&key={key}")
    out = json.loads(wait(browser, lambda d: d.find_element(By.ID, "out").text))
    assert "blocked" in out and "Failed to fetch" in out["blocked"]
