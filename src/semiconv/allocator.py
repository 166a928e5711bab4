"""Keep freed memory in the process while training: no page faults from re-allocating large
tensors each step.

A training step on the CPU allocates and frees hundreds of MB of activations (a 4 x 16 x 320 x
320 bf16 map is 13 MB). glibc's malloc hands such blocks back to the kernel when they are freed
(mmap'd chunks, heap trimming), so every step faults the same memory in again, page by page:
15,000-50,000 minor page faults and 50-350 ms of kernel time per step of the long-run recipe on
2 cores (docs/benchmarks.md, "A faster training step"). With freed memory kept in the heap the
faults stop after the first steps. When training ends the heap is trimmed and glibc's release
of memory restored, so a long-lived process (napari after a fine-tuning) gives the memory back.
`trim_freed_memory` alone hands back the free pages inside the heap (a long stack's segmentation
calls it every few planes).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
KEEP = 2**31 - 1  # mallopt takes an int: blocks up to 2 GiB come from (and stay in) the heap
RELEASED_MMAP = 32 * 2**20  # after training: what glibc's own sliding threshold grows to at most
RELEASED_TRIM = 128 * 2**10  # glibc's default trim threshold


@lru_cache(maxsize=1)
def _glibc():
    """The C library when it is glibc on Linux (has mallopt and malloc_trim), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes, libc.mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
        libc.malloc_trim.argtypes, libc.malloc_trim.restype = (ctypes.c_size_t,), ctypes.c_int
    except (OSError, AttributeError):  # musl and others: no mallopt / malloc_trim
        return None
    return libc


def keep_freed_memory() -> bool:
    """From now on, blocks up to 2 GiB come from the heap and the heap is never trimmed (this
    process and those it forks). True when set; False where the C library is not glibc (macOS,
    Windows, musl): nothing changes there."""
    libc = _glibc()
    return libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, KEEP)) and bool(libc.mallopt(M_TRIM_THRESHOLD, KEEP))


def release_freed_memory() -> None:
    """Give the heap's free memory back to the kernel and release large blocks again as they are
    freed (mmap above 32 MiB, trimming above 128 KiB). No-op where the C library is not glibc."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, RELEASED_MMAP)
        libc.mallopt(M_TRIM_THRESHOLD, RELEASED_TRIM)
    trim_freed_memory()


def trim_freed_memory() -> None:
    """Give the free memory inside the heap back to the kernel now (glibc's malloc_trim: also the
    free pages between blocks still in use, which a long loop of large temporary arrays leaves).
    No-op where the C library is not glibc."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


@contextmanager
def freed_memory_kept(enabled: bool = True) -> Iterator[bool]:
    """`keep_freed_memory()` for the block (when `enabled`), `release_freed_memory()` after it.
    Yields whether memory is kept."""
    kept = enabled and keep_freed_memory()
    try:
        yield kept
    finally:
        if kept:
            release_freed_memory()
