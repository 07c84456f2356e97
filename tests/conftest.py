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
