"""scripts/chaos.py's attacks against the Procfile's service, shortened: each must be contained."""

from __future__ import annotations

import sys

import pytest
from live import ROOT

sys.path.insert(0, str(ROOT / "scripts"))

import chaos  # noqa: E402

# The script's defaults are the figures (200 sockets for 30 s); 12 s keeps make test bounded.
ARGS = chaos.parser().parse_args(["--seconds", "12", "--slow", "200", "--keepalive-clients", "16", "--batches", "6"])


@pytest.mark.parametrize("attack", sorted(chaos.ATTACKS))
def test_attack_is_contained(attack):
    lines = []
    verdicts = chaos.run([attack], ARGS, out=lines.append)
    assert verdicts == {attack: True}, lines
