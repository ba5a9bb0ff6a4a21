"""For clients of the service: what they send, built with the standard library alone (no numpy, no Flask)."""

from __future__ import annotations

import base64
import gzip
import json
from typing import Any


def gzip_payload(document: Any) -> str:
    """What a client sends as "payload" to POST /predict: JSON, gzip-compressed, base64-encoded."""
    return base64.b64encode(gzip.compress(json.dumps(document).encode())).decode()
