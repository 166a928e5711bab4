"""semiconv.allocator: freed memory stays in the process, so re-allocating it costs no page faults."""

import subprocess
import sys

import pytest

FAULTS = """
import resource, sys
import torch
if sys.argv[1] == "keep":
    from semiconv.allocator import keep_freed_memory
    assert keep_freed_memory()
def step():  # a training step's pattern: activations of several sizes (MiB) allocated, touched, freed
    held = [torch.ones(n * 2**18) for n in (1, 4, 13, 26, 13, 4, 52, 8)]
    del held
for _ in range(3):  # warm-up: a first allocation always faults its pages in
    step()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    step()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def minor_faults(mode: str) -> int:
    done = subprocess.run([sys.executable, "-c", FAULTS, mode], capture_output=True, text=True, check=True)
    return int(done.stdout.split()[-1])


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc (Linux)")
def test_kept_memory_is_reused_without_page_faults():
    pages = 10 * 121 * 2**20 // 4096  # ten steps of 121 MiB in 4 KiB pages
    assert minor_faults("default") > pages // 10  # glibc hands the blocks back and faults them in again
    assert minor_faults("keep") < pages // 1000   # kept: the same pages serve every step


def test_setting_is_made_once_per_process():
    from semiconv.allocator import keep_freed_memory

    assert keep_freed_memory() is keep_freed_memory()
    assert keep_freed_memory() == sys.platform.startswith("linux")
