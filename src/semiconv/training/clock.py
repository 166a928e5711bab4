"""Training time that leaves out the time the process spent stopped (SIGSTOP or Ctrl-Z, then SIGCONT).

A long run is paused with `kill -STOP` while tests or benchmarks use the cores; wall time would
count those hours as training. The clock is ticked once a step; an interval in which the process
was continued counts only as long as the interval before it (the pause itself is left out, the
step around it is kept)."""

from __future__ import annotations

import signal
import threading
import time
from contextlib import contextmanager
from typing import Callable, Iterator


class TrainingClock:
    """Seconds of training: `seconds_before` (earlier runs of a resumed training) plus the time
    between ticks, pauses left out. Pauses are seen inside `pauses_left_out()` entered in the main
    thread (Python runs signal handlers there); elsewhere it is plain wall time."""

    def __init__(self, seconds_before: float = 0.0, now: Callable[[], float] = time.perf_counter):
        self.seconds_before = seconds_before
        self._now = now
        self._last = now()
        self._counted = 0.0
        self._typical: float | None = None
        self._continued = False

    @contextmanager
    def pauses_left_out(self) -> Iterator[None]:
        """While inside, a SIGCONT marks the interval it falls in as paused; SIGCONT's handler is
        given back on leaving. Outside the main thread (no signal handlers there) it does nothing."""
        if not hasattr(signal, "SIGCONT") or threading.current_thread() is not threading.main_thread():
            yield
            return

        def on_continue(signum, frame):
            self.continued()
            if callable(previous):
                previous(signum, frame)

        previous = signal.signal(signal.SIGCONT, on_continue)
        try:
            yield
        finally:
            signal.signal(signal.SIGCONT, previous if previous is not None else signal.SIG_DFL)

    def continued(self) -> None:
        """The process was stopped and has been continued since the last tick."""
        self._continued = True

    def restart(self) -> None:
        """Count from now (the time since the last tick is dropped: set-up, not training)."""
        self._last, self._continued = self._now(), False

    def _since_last_tick(self, now: float) -> float:
        """The time since the last tick; with a pause in it, no more than the interval before."""
        interval = now - self._last
        return min(interval, self._typical or 0.0) if self._continued else interval

    def tick(self) -> None:
        """Count the time since the last tick; an interval with a pause in it counts as long as the
        interval before it (0 if there was none), or as itself where that is shorter."""
        now = self._now()
        interval = self._since_last_tick(now)
        if not self._continued:
            self._typical = interval
        self._last, self._continued = now, False
        self._counted += interval

    def seconds(self) -> float:
        """Training seconds so far, to now."""
        return self.seconds_before + self._counted + self._since_last_tick(self._now())
