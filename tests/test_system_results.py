"""The system checks' result files (bench/results/system-*.md) passed, whole, and are of
this tree. The checks take 30-60 min and root (bench/system/; opt-in in .ci/run), so a
result older than a change to install.sh, systemd/, edge/sources/ or the pins is a skip
that names the command to rerun (shown in pytest's summary); with
EMOTION_EDGE_SYSTEM_CHECKS=1 (the opt-in step of .ci/run, after the checks ran) it fails."""
from __future__ import annotations

import os
import re
import sys

import pytest

from conftest import ROOT

sys.path.insert(0, str(ROOT / "bench" / "system"))
from common import INPUTS, fingerprint  # noqa: E402

CHECKS = {"system-arm64.md": "bench/system/arm64.py",
          "system-systemd.md": "bench/system/systemd_vm.py"}


@pytest.mark.skipif(not (ROOT / ".git").exists(), reason="not a git checkout (the fingerprint "
                    "covers the files git tracks)")
@pytest.mark.parametrize("name", sorted(CHECKS))
def test_system_results_are_of_this_tree_and_passed(name):
    text = (ROOT / "bench" / "results" / name).read_text()
    inputs = re.search(r"^Inputs \(.*\): `([0-9a-f]+)`$", text, re.M)
    rerun = f"rerun sudo nice -n 10 .venv/bin/python {CHECKS[name]} and commit its result"
    assert inputs, f"{name} has no Inputs line: {rerun}"
    if inputs.group(1) != fingerprint():
        stale = f"stale: {', '.join(INPUTS)} changed since {name} was written: {rerun}"
        if os.environ.get("EMOTION_EDGE_SYSTEM_CHECKS") == "1":
            pytest.fail(stale)
        pytest.skip(stale)
    command = re.search(r"^`([^`]+)`", text, re.M)
    assert command and not re.search(r"--(only|reuse)", command.group(1)), (
        f"{name} is from a partial run ({command and command.group(1)}): {rerun}")
    passed = re.search(r"(\d+) of (\d+) checks passed", text)
    assert passed and passed.group(1) == passed.group(2), f"{name}: {passed.group(0)}"
