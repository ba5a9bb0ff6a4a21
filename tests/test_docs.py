"""The README names every route and every environment variable the code reads."""

import re
from pathlib import Path

from eta311.web.predict import ROUTES

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()


def test_readme_names_every_route(app):
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule).rstrip("/") or "/"
        assert f"`{path}" in README or f"{path}`" in README or f" {path}" in README, path
    for route in ROUTES:
        assert route.split(" ", 1)[1].split("?")[0] in README


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
