"""The README names every route and every environment variable the code reads; the route docs match the URL map."""

import json
import re
from pathlib import Path

from flask import Flask

from eta311.model.features import TIMESTAMP_PATTERN
from eta311.web.routes import AUTOMATIC_METHODS, declare, readme_table, served_routes

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
PARAMETER = re.compile(r"<(?:[^:<>]+:)?([^<>]+)>|\{([^{}]+)\}")  # <path:x>, <x> and {x} all become <x>


def calls(method_list: str, path: str) -> set[tuple[str, str]]:
    """("GET|POST", "/predict/{x}?lat=") -> {("GET", "/predict/<x>"), ("POST", "/predict/<x>")}."""
    path = PARAMETER.sub(lambda m: f"<{m.group(1) or m.group(2)}>", path.split("?")[0])
    return {(method.upper(), path) for method in method_list.split("|")}


def served(app: Flask) -> set[tuple[str, str]]:
    return {
        call
        for rule in app.url_map.iter_rules()
        for method in sorted(rule.methods - AUTOMATIC_METHODS)
        for call in calls(method, rule.rule)
    }


def documented(app: Flask, readme: str) -> dict[str, set[tuple[str, str]]]:
    """What the index at /, /openapi.json and the README's route table each say the service answers."""
    client = app.test_client()
    table = readme.split("| route | answers |", 1)[1].split("\n\n", 1)[0]
    return {
        "index": {c for call in client.get("/").json["routes"] for c in calls(*call.split(" ", 1))},
        "openapi": {
            c
            for path, operations in client.get("/openapi.json").json["paths"].items()
            for c in calls("|".join(operations), path)
        },
        "readme": {c for method, path in re.findall(r"`([A-Z]+) (/[^`]*)`", table) for c in calls(method, path)},
    }


def test_the_index_openapi_and_readme_list_exactly_the_routes_served(app):
    answered = served(app)
    assert ("GET", "/predict/<complaint_type>") in answered and ("POST", "/echo") in answered
    for where, routes in documented(app, README).items():
        assert routes == answered, f"{where}: missing {answered - routes}, extra {routes - answered}"


def test_a_route_added_without_a_declaration_is_missing_everywhere(app):
    app.add_url_rule("/undeclared", "undeclared", lambda: "")
    for where, routes in documented(app, README).items():
        assert ("GET", "/undeclared") in served(app) - routes, where


def test_a_rule_flask_makes_itself_can_be_declared_too(app, tmp_path):
    (tmp_path / "logo.svg").write_text("<svg/>")
    app.static_folder, app.static_url_path = str(tmp_path), "/assets"
    app.add_url_rule("/assets/<path:filename>", endpoint="static", view_func=app.send_static_file)
    assert "static" not in {r.endpoint for r in served_routes(app)}
    declare(app, "static", uses="the page's images", operations={"get": {"responses": {}}}, keyless=True)
    assert app.test_client().get("/").json["routes"]["GET /assets/<filename>"] == "the page's images"
    assert app.test_client().get("/assets/logo.svg").status_code == 200


def test_the_readme_route_table_is_the_declared_one(app):
    assert readme_table(app) in README, "run scripts/readme_routes.py to rewrite the README's route table"


def test_openapi_dates_use_the_pattern_the_features_accept(client):
    record = client.get("/openapi.json").json["components"]["schemas"]["PredictionRecord"]
    assert record["properties"]["date"]["pattern"] == TIMESTAMP_PATTERN


def test_readme_documents_every_setting():
    code = "".join(p.read_text() for p in [ROOT / "eta311" / "settings.py", ROOT / "gunicorn.conf.py"])
    names = set(re.findall(r"""(?:get\(|_int\(env, )["']([A-Z][A-Z0-9_]+)["']""", code))
    assert {"MODEL_URI", "PORT", "WEB_CONCURRENCY"} <= names
    for name in names:
        assert f"`{name}`" in README, name


def test_readme_commands_exist_in_makefile():
    makefile = (ROOT / "Makefile").read_text()
    for target in ("install", "run", "test"):
        assert f"make {target}" in README and re.search(rf"^{target}:", makefile, re.M)


def test_readme_speed_block_is_the_latest_bench_results():
    # `make bench` writes both from one run; a hand edit to either shows here.
    block = README.split("<!-- bench:start -->\n", 1)[1].split("<!-- bench:end -->", 1)[0]
    assert block.startswith("```text\n") and block.endswith("```\n"), block[:200]
    assert block[len("```text\n") : -len("```\n")] == (ROOT / "bench" / "results.txt").read_text()


def test_readme_model_example_is_what_the_bundled_model_answers():
    from eta311.settings import Settings
    from eta311.web.app import create_app

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### Model estimates") : readme.index("### Batches")]
    url = re.search(r"curl '(http://localhost:5000)(/predict/[^']+)'", section).group(2)
    shown = json.loads("".join(line[2:].strip() for line in section.splitlines() if line.startswith("# ")))
    bundled = Settings(model_uri=str(ROOT / "models"), fallback_uri=None, reload_interval_seconds=0)
    answer = create_app(bundled).test_client().get(url).get_json()
    for key in ("estimated_time", "interval", "complaint_type", "fallbacks", "model"):
        assert shown[key] == answer[key], key
