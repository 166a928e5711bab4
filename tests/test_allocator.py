"""semiconv.allocator: freed memory stays in the process while training (re-allocating it costs no
page faults) and goes back to the kernel when training ends."""

import subprocess
import sys

import pytest

STEP_MIB = (1, 4, 13, 26, 13, 4, 52, 8)  # a training step's pattern: activations of several sizes (MiB)

FAULTS = f"""
import resource, sys
import torch
if sys.argv[1] == "keep":
    from semiconv.allocator import keep_freed_memory
    assert keep_freed_memory()
def step():  # allocated, touched, freed
    held = [torch.ones(n * 2**18) for n in {STEP_MIB}]
    del held
for _ in range(6):  # warm-up: first allocations fault their pages in, and the kept heap takes a few
    step()          # steps to settle (after 3, one 13 MiB block still faulted in 7 runs of 20)
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
    pages = 10 * sum(STEP_MIB) * 2**20 // 4096  # ten steps in 4 KiB pages
    default, kept = minor_faults("default"), minor_faults("keep")
    assert default > pages // 10  # glibc hands the blocks back and faults them in again
    # kept: the same pages serve every step; the heap may still grow once by a block (13 MiB,
    # 3,328 faults, in 2 runs of 8 on one machine and in CI) against 130,000+ faults by default
    assert kept < pages // 20 and 20 * kept < default


RESIDENT = f"""
import sys
import torch
from semiconv.allocator import freed_memory_kept

def resident_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

base = resident_mib()
with freed_memory_kept() as kept:
    held = [torch.ones(n * 2**18) for n in {STEP_MIB} * 4]  # four steps' worth ({4 * sum(STEP_MIB)} MiB), then freed
    del held
    inside = resident_mib() - base
after = resident_mib() - base
print(kept, round(inside), round(after))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc (Linux)")
def test_memory_kept_during_training_goes_back_after_it():
    done = subprocess.run([sys.executable, "-c", RESIDENT], capture_output=True, text=True, check=True)
    kept, inside, after = done.stdout.split()
    assert kept == "True"
    assert int(inside) > 400  # freed, but still the process's: the next step reuses it
    assert int(after) < 100   # trimmed when the block ends


HOLES = """
import numpy as np
from semiconv.allocator import trim_freed_memory

def resident_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

base = resident_mib()
blocks = [np.ones(12_000) for _ in range(4_000)]  # 96 KB each, from the heap (under glibc's mmap threshold)
del blocks[::2]  # every other one freed: holes between blocks still in use, nothing the heap's top can give back
holes = resident_mib() - base
trim_freed_memory()
print(round(holes), round(resident_mib() - base))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc (Linux)")
def test_trimming_gives_back_the_free_pages_between_blocks_in_use():
    done = subprocess.run([sys.executable, "-c", HOLES], capture_output=True, text=True, check=True)
    holes, trimmed = map(int, done.stdout.split())
    assert holes > 300  # 4,000 blocks of 96 KB allocated, half of them freed: all still resident
    assert trimmed < holes - 120  # about half of them (the freed holes' pages) returned
