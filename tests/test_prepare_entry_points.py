"""Every prepare/ script runs both as `python prepare/x.py` and as `python -m prepare.x` (a script run by path
has prepare/, not the repository root, on sys.path, so each one puts the root there itself)."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted(p.stem for p in (ROOT / "prepare").glob("*.py") if p.stem != "__init__")


@pytest.mark.parametrize("name", SCRIPTS)
def test_prepare_script_runs_by_path_and_as_module(name, tmp_path):
    for argv in ([sys.executable, str(ROOT / "prepare" / f"{name}.py"), "--help"],
                 [sys.executable, "-m", f"prepare.{name}", "--help"]):
        # from another directory: nothing may depend on the caller's working directory
        cwd = tmp_path if argv[1] != "-m" else ROOT
        r = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, f"{' '.join(argv[1:])}: {r.stderr[-800:]}"
        assert "usage" in r.stdout.lower(), argv
