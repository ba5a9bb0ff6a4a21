"""The WSGI entry files: two statements each, and what serving from predict.py imports (no pandas, sklearn, scipy)."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys

import pytest
from live import ROOT

# Importing predict.py and answering one model request, in a fresh interpreter; a finder first in
# sys.meta_path records every top-level module asked for, so even an import that fails (a library
# not installed here, or one guarded by try/except) is seen.
SERVE_ONE = """
import importlib.abc, json, sys
asked = set()

class Recorder(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        asked.add(name.partition(".")[0])
        return None

sys.meta_path.insert(0, Recorder())
sys.path.insert(0, sys.argv[1])
import predict
reply = predict.app.test_client().get("/predict/residential?lat=40.7&lon=-73.9&date=2019-06-08 00:00:09")
print(json.dumps({"model": reply.get_json()["model"], "asked": sorted(asked | {m.partition(".")[0] for m in sys.modules})}))
"""


def _is_run_block(node: ast.stmt) -> bool:
    """`if __name__ == "__main__": app.run(...)`: python echo.py serves, as the seed's service was first run."""
    if not (isinstance(node, ast.If) and ast.unparse(node.test) == "__name__ == '__main__'" and not node.orelse):
        return False
    call = node.body[0].value if len(node.body) == 1 and isinstance(node.body[0], ast.Expr) else None
    return isinstance(call, ast.Call) and ast.unparse(call.func) == "app.run"


@pytest.mark.parametrize("name", ["echo.py", "predict.py"])
def test_entry_files_import_the_factory_and_build_app(name):
    tree = ast.parse((ROOT / name).read_text())
    body = [node for node in tree.body if not (isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant))]
    if body and _is_run_block(body[-1]):
        body = body[:-1]  # the development server when run as a script; nothing else
    assert len(body) == 2 and isinstance(body[0], ast.ImportFrom), ast.dump(tree)
    assert isinstance(body[1], ast.Assign) and [t.id for t in body[1].targets] == ["app"]


def test_serving_a_model_estimate_never_imports_pandas_sklearn_or_scipy(tmp_path):
    env = {**os.environ, "STORE_URI": str(tmp_path / "store"), "RELOAD_INTERVAL_SECONDS": "0", "LOG_LEVEL": "ERROR"}
    done = subprocess.run(
        [sys.executable, "-c", SERVE_ONE, str(ROOT)], cwd=tmp_path, env=env, capture_output=True, text=True, check=True
    )
    served = json.loads(done.stdout.strip().splitlines()[-1])
    assert served["model"] == "gbm"  # the bundled model answered, so the whole serving path ran
    assert {"flask", "numpy", "eta311"} <= set(served["asked"])  # the recorder saw the imports
    unwanted = {"pandas", "sklearn", "scipy"} & set(served["asked"])
    assert not unwanted, f"the serving path asked for {sorted(unwanted)}"
