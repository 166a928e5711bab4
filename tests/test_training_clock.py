"""The training clock leaves out the time a run spent stopped (kill -STOP, then -CONT)."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from semiconv.training.clock import TrainingClock


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def test_an_interval_with_a_pause_counts_as_the_step_before_it():
    now = FakeTime()
    clock = TrainingClock(seconds_before=50.0, now=now)
    for _ in range(3):  # three steps of 2 s
        now.t += 2.0
        clock.tick()
    assert clock.seconds() == pytest.approx(56.0)
    now.t += 0.5
    assert clock.seconds() == pytest.approx(56.5)  # to now, between ticks
    now.t += 599.5  # stopped ten minutes in the middle of a step...
    clock.continued()  # ...then continued
    assert clock.seconds() == pytest.approx(58.0)  # read before the step ends: the pause left out already
    clock.tick()
    assert clock.seconds() == pytest.approx(58.0)  # the step counts as the one before it
    now.t += 1.5
    clock.tick()  # an ordinary step again
    assert clock.seconds() == pytest.approx(59.5)
    now.t += 30.0
    clock.restart()  # set-up time is not training
    now.t += 1.0
    clock.tick()
    assert clock.seconds() == pytest.approx(60.5)


def test_a_pause_with_no_step_before_it_counts_nothing_and_a_short_interval_counts_itself():
    now = FakeTime()
    clock = TrainingClock(now=now)
    now.t += 300.0
    clock.continued()
    clock.tick()
    assert clock.seconds() == 0.0
    now.t += 5.0
    clock.tick()
    now.t += 1.0  # continued, but the interval is shorter than the step before
    clock.continued()
    clock.tick()
    assert clock.seconds() == pytest.approx(6.0)


def test_sigcont_is_watched_only_inside_and_given_back():
    before = signal.getsignal(signal.SIGCONT)
    clock = TrainingClock()
    assert signal.getsignal(signal.SIGCONT) == before
    with clock.pauses_left_out():
        assert signal.getsignal(signal.SIGCONT) != before
    assert signal.getsignal(signal.SIGCONT) == before


CHILD = """
import json, sys, time
from semiconv.training.clock import TrainingClock
clock = TrainingClock()
start = time.perf_counter()
with clock.pauses_left_out():
    print("ready", flush=True)
    while time.perf_counter() - start < 4.0:
        time.sleep(0.05)
        clock.tick()
print(json.dumps({"wall": time.perf_counter() - start, "training": clock.seconds()}), flush=True)
"""


@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="needs POSIX signals")
def test_a_stopped_process_does_not_count_its_pause():
    """A process stopped for 2 s of its 4 s counts about 2 s of training, where wall time says 4."""
    child = subprocess.Popen([sys.executable, "-c", CHILD], stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "ready"
        time.sleep(0.5)
        os.kill(child.pid, signal.SIGSTOP)
        time.sleep(2.0)
        os.kill(child.pid, signal.SIGCONT)
        out, _ = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    times = json.loads(out.strip().splitlines()[-1])
    assert times["wall"] >= 4.0
    assert times["training"] < times["wall"] - 1.5
    assert times["training"] > 1.0
