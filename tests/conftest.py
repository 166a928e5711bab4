import os
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parent.parent
SHARED_BBBC010 = Path(os.environ.get("SEMICONV_BBBC010", REPO.parent / "shared" / "data" / "bbbc010"))


@pytest.fixture(scope="session")
def bbbc010_root() -> Path:
    if not (SHARED_BBBC010 / "BBBC010_v1_images").is_dir():
        pytest.skip(f"shared BBBC010 training half not found at {SHARED_BBBC010}")
    return SHARED_BBBC010


@pytest.fixture(scope="session")
def sample_root() -> Path:
    from semiconv import sample_data_dir

    return sample_data_dir()


@pytest.fixture
def rng():
    return np.random.default_rng(0)
