"""The device tests in a venv made as the Pi's install makes it: Debian's Python 3.11 and
(where installed) apt's python3-numpy 1.24, seen through --system-site-packages, and the
pins of systemd/pi-constraints.txt (numpy<2, OpenCV 4.11), with the test tools but
without the host extra. Tests that need the host toolchain skip there (conftest.py)."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench" / "system"))
from common import pi_venv  # noqa: E402  (shared with the arm64 system check)

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin") or ""
INSIDE = "EMOTION_EDGE_PI_VENV"   # set in the venv's run: do not recurse


@pytest.mark.skipif(bool(os.environ.get(INSIDE)), reason="already inside the Pi venv")
@pytest.mark.skipif(not SYSTEM_PYTHON, reason="no /usr/bin/python3 (Debian's) to build the venv")
def test_device_tests_pass_with_the_pi_pins(tmp_path):
    python = pi_venv(SYSTEM_PYTHON)
    versions = subprocess.run(
        [str(python), "-c", "import sys, numpy, cv2; from importlib.metadata import version; "
         "print(sys.version.split()[0], numpy.__version__, cv2.__version__, "
         "version('ai-edge-litert'), numpy.__file__)"],
        capture_output=True, text=True, check=True).stdout.split()
    py, numpy_version, cv_version, litert, numpy_file = versions
    assert numpy_version.startswith("1.") and cv_version == "4.11.0", versions
    assert "tensorflow" not in subprocess.run([str(python), "-m", "pip", "list"],
                                              capture_output=True, text=True).stdout
    env = {**os.environ, INSIDE: "1", "PYTHONPATH": str(ROOT)}
    r = subprocess.run([str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                        "--ignore", "tests/test_pi_constraints.py", "tests"],
                       cwd=ROOT, env=env, capture_output=True, text=True)
    summary = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr[-2000:]
    print(f"Python {py}, numpy {numpy_version} ({numpy_file}), OpenCV {cv_version}, "
          f"LiteRT {litert}: {summary}")
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-2000:]
