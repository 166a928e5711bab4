"""semiconv.allocator: freed memory stays in the process while training (re-allocating it costs no
page faults) and goes back to the kernel when training ends."""

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


RESIDENT = """
import sys
import torch
from semiconv.allocator import freed_memory_kept

def resident_mib():
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * 4096 / 2**20

base = resident_mib()
with freed_memory_kept() as kept:
    held = [torch.ones(n * 2**18) for n in (1, 4, 13, 26, 13, 4, 52, 8) * 4]  # 484 MiB, then freed
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
