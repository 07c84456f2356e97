import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("MPLBACKEND", "Agg")


def _find_shared_reference():
    """The real reference files live in ../shared/reference next to the checkout."""
    for base in [ROOT, *ROOT.parents]:
        cand = base / "shared" / "reference"
        if cand.is_dir():
            return cand
        cand = base.parent / "shared" / "reference"
        if cand.is_dir():
            return cand
    env = os.environ.get("MORL_SHARED_REFERENCE")
    return Path(env) if env else None


@pytest.fixture(scope="session")
def reference_dir():
    ref = _find_shared_reference()
    if ref is None or not (ref / "humanml3d_sample").is_dir():
        pytest.skip("shared/reference not found (set MORL_SHARED_REFERENCE)")
    return ref


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The suite's models are tiny: one intra-op thread avoids oversubscription on 2-core CI machines
    (several torch processes with 2 spinning threads each slowed tiny-model steps by 100x)."""
    import torch
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(prev)
