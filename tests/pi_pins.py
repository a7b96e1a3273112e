"""The device tests in a venv made as the Pi's install makes it: Debian's Python 3.11 and
(where installed) apt's python3-numpy 1.24, seen through --system-site-packages, and the
pins of systemd/pi-constraints.txt (numpy<2, OpenCV 4.11), with the test tools but without
the host extra. Tests that need the host toolchain skip there (conftest.py).

Not a test (it reruns the suite, about 10 minutes): a step of .ci/run of its own, and

    .venv/bin/python tests/pi_pins.py [PYTEST ARGS]     # e.g. -m "not slow"

Exit status: pytest's in the Pi venv; 1 when the venv is not the Pi's set; 0 with a note
where there is no Debian python3 to build it from.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench" / "system"))
from common import pi_venv  # noqa: E402  (shared with the arm64 system check)

SYSTEM_PYTHON = shutil.which("python3", path="/usr/bin") or ""


def main(pytest_args: list[str]) -> int:
    if not SYSTEM_PYTHON:
        print("pi_pins: skipped: no /usr/bin/python3 (Debian's) to build the venv from")
        return 0
    python = pi_venv(SYSTEM_PYTHON)
    versions = subprocess.run(
        [str(python), "-c", "import sys, numpy, cv2; from importlib.metadata import version; "
         "print(sys.version.split()[0], numpy.__version__, cv2.__version__, "
         "version('ai-edge-litert'), numpy.__file__)"],
        capture_output=True, text=True, check=True).stdout.split()
    py, numpy_version, cv_version, litert, numpy_file = versions
    print(f"pi_pins: Python {py}, numpy {numpy_version} ({numpy_file}), OpenCV {cv_version}, "
          f"LiteRT {litert}", flush=True)
    if not (numpy_version.startswith("1.") and cv_version == "4.11.0"):
        print(f"pi_pins: FAIL: the venv is not the Pi's set (numpy 1.x, OpenCV 4.11.0): {versions}")
        return 1
    if "tensorflow" in subprocess.run([str(python), "-m", "pip", "list"],
                                      capture_output=True, text=True).stdout:
        print("pi_pins: FAIL: TensorFlow is in the Pi venv (the host extra must stay out)")
        return 1
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([str(python), "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider",
                           "-n", "auto", *pytest_args], cwd=ROOT, env=env).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
