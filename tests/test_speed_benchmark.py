"""benchmarks/speed.py's timing logic: contenders timed in interleaved rounds, ratios per round."""

import sys
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))

from speed import ratio, time_rounds  # noqa: E402


def test_contenders_are_timed_in_interleaved_rounds_after_a_warm_up():
    order = []
    calls = {name: (lambda n=name: order.append(n)) for name in ("model:a", "bf16", "stock")}
    times = time_rounds(calls, repeats=3)
    assert order == ["model:a", "bf16", "stock"] * 4  # one warm-up round, then three timed ones
    assert {name: len(t) for name, t in times.items()} == {"model:a": 3, "bf16": 3, "stock": 3}
    assert all(t >= 0 for ts in times.values() for t in ts)


def test_a_ratio_is_the_median_of_per_round_ratios_with_its_range():
    # the host slows down 2x in round two: per-round ratios stay 0.2, 0.2, 0.25
    times = {"ours": [1.0, 2.0, 1.0], "stock": [5.0, 10.0, 4.0]}
    assert ratio(times, "ours", "stock") == (0.2, [0.2, 0.25])


def test_a_child_process_peak_memory_leaves_out_its_parent():
    """A fresh process's own peak: a parent holding 1.5 GiB does not lift its child's figure
    (about 0.5 GiB: Python, numpy, torch; ru_maxrss would report at least the parent's 1.5 GiB,
    as Linux carries it across exec)."""
    import subprocess

    import numpy as np

    held = np.ones(1536 * 2**20 // 8)  # touched: resident in this process
    code = f"import sys; sys.path.insert(0, {str(BENCHMARKS)!r}); from speed import own_peak_mb; print(own_peak_mb())"
    child = float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
    assert held.sum() > 0 and 0 < child < 1024
