"""Keep freed memory in the process: no page faults from re-allocating large tensors each step.

A training step on the CPU allocates and frees hundreds of MB of activations (a 4 x 16 x 320 x
320 bf16 map is 13 MB). glibc's malloc hands such blocks back to the kernel when they are freed
(mmap'd chunks, heap trimming), so every step faults the same memory in again, page by page:
20,000-50,000 minor page faults and 50-350 ms of kernel time per step of the long-run recipe on
2 cores. With freed memory kept in the heap the faults stop after the first steps
(benchmarks/training_speed.py measures it in a process per variant).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from functools import lru_cache

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
LARGEST = 2**31 - 1  # mallopt takes an int: blocks up to 2 GiB come from (and return to) the heap


@lru_cache(maxsize=1)
def keep_freed_memory() -> bool:
    """Tell glibc's malloc to serve blocks up to 2 GiB from the heap and never trim it, for the
    rest of this process (and processes it forks). True when set; False where the C library is not
    glibc (macOS, Windows, musl): nothing changes there."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST)) and bool(mallopt(M_TRIM_THRESHOLD, LARGEST))
