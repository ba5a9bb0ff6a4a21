"""Rewrite the route table in README.md from the routes the app declares (tests/test_docs.py checks it)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from eta311.settings import Settings  # noqa: E402
from eta311.web.app import create_app  # noqa: E402
from eta311.web.routes import readme_table  # noqa: E402

# The table runs from its header row to the first line that is not a table row.
TABLE = re.compile(r"^\| route \| answers \|\n(?:\|.*\n)*", re.M)


def main() -> int:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if not TABLE.search(text):
        print("README.md has no '| route | answers |' table", file=sys.stderr)
        return 1
    app = create_app(Settings(fallback_uri=None, model_uri=str(ROOT / "models"), reload_interval_seconds=0))
    updated = TABLE.sub(lambda _: readme_table(app), text, count=1)
    readme.write_text(updated)
    print("README.md route table is up to date" if updated == text else "README.md route table rewritten")
    return 0


if __name__ == "__main__":
    sys.exit(main())
