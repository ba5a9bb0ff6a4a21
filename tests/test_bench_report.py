"""The benchmark's target lines: met or MISSED from the figures, and a measured reason under each miss."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "scripts"))

import bench  # noqa: E402 - scripts/ is not a package


def run(rps: float, **extra: float) -> dict:
    return {"rps": rps, "p50_us": 1_000.0, "p99_us": 5_000.0, "errors": 0, **extra}


def served(model_rps: float, http_rows: float, whole_rows: float, batch_pss: float) -> dict:
    batch = run(20, rows_per_s=http_rows, in_process_rows_per_s=700_000.0, in_process_wsgi_rows_per_s=whole_rows)
    return {
        "results": {
            "floor: bare Flask": {8: run(5_000)},
            "medians route": {8: run(4_500)},
            "model route": {8: run(model_rps)},
            "batch 10,000 rows": {8: batch},
            "batch 1,000 rows": {8: batch},
        },
        "memory": {"single rows": (27.0, [23.0, 23.0]), "batches": (29.0, [batch_pss / 2, batch_pss / 2])},
        "cold": [0.4, 0.4, 0.4],
        "concurrency": [8],
        "in_process_us": {"floor: bare Flask": 57.0, "medians route": 64.0, "model route": 110.0},
    }


def test_every_target_met_gives_no_reasons():
    lines = bench.target_lines(served(model_rps=4_000, http_rows=500_000, whole_rows=600_000, batch_pss=100), {})
    assert not any("MISSED" in line or "why:" in line for line in lines)


def test_a_missed_route_ratio_says_where_the_time_goes():
    lines = bench.target_lines(served(model_rps=3_000, http_rows=500_000, whole_rows=600_000, batch_pss=100), {})
    missed = lines.index("model route >= 0.70 x floor at c=8: 0.60  MISSED")
    # 1e6/3000 = 333 us against 1e6/5000 = 200 us; 0.70 allows 200/0.7 - 200 = 86 us more.
    assert lines[missed + 1] == (
        "  why: a model request takes 333 us of the server core against the floor's 200 us (133 us more;"
        " 0.70 allows 86 us more); in-process, the route's WSGI call alone costs 110 us against the floor's 57 us"
        " (53 us more)"
    )


@pytest.mark.parametrize("size", ["10,000", "1,000"])
def test_a_missed_batch_ratio_gives_the_ceiling_of_the_service_own_call(size):
    lines = bench.target_lines(served(model_rps=4_000, http_rows=210_000, whole_rows=245_000, batch_pss=100), {})
    missed = next(i for i, line in enumerate(lines) if line.startswith(f"{size}-row") and "MISSED" in line)
    assert lines[missed + 1] == (
        "  why: the service's whole in-process call on this body (parse, checks, model, answer) runs at 0.35 x the"
        " model's rows/s, so even free HTTP would reach at most 0.35"
    )


def test_memory_after_batches_over_the_limit_gives_the_growth():
    lines = bench.target_lines(served(model_rps=4_000, http_rows=500_000, whole_rows=600_000, batch_pss=140), {})
    assert "2 preloaded workers + master <= 150 MB PSS, after batches: 169 MB  MISSED" in lines
    assert any(line.startswith("  why: the workers kept 94 MB more") and "(46 -> 140 MB)" in line for line in lines)
