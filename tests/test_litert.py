"""LiteRT interpreters are made without LiteRT's native start-up line on stderr."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODEL = ROOT / "models" / "emotion_int8.tflite"
CHATTER = "INFO: Created TensorFlow Lite XNNPACK delegate"


def stderr_of(code: str) -> str:
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stderr


def test_plain_litert_prints_the_line_this_module_drops():
    # If a LiteRT upgrade stops printing it, edge/litert.py's filter can go.
    code = ("from ai_edge_litert.interpreter import Interpreter\n"
            f"Interpreter(model_path={str(MODEL)!r}).allocate_tensors()\n")
    assert CHATTER in stderr_of(code)


def test_the_line_is_dropped_and_everything_else_on_fd2_is_kept():
    code = ("import os, sys\n"
            "from edge.litert import interpreter, quiet_native_stderr\n"
            "print('python before', file=sys.stderr)\n"
            "with quiet_native_stderr():\n"
            "    os.write(2, b'native line\\n')\n"
            f"    interp = interpreter(path={str(MODEL)!r})\n"
            "    print('python inside', file=sys.stderr)\n"
            "    os.write(2, b'no newline at the end')\n"
            "interp.invoke()\n"
            "print('', file=sys.stderr)\n"
            "print('python after', file=sys.stderr)\n")
    assert stderr_of(code) == ("python before\nnative line\npython inside\n"
                               "no newline at the end\npython after\n")


def test_interpreter_is_allocated_and_runs():
    import numpy as np

    from edge.litert import interpreter
    interp = interpreter(content=MODEL.read_bytes())
    d = interp.get_input_details()[0]
    interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
    interp.invoke()
    assert interp.get_tensor(interp.get_output_details()[0]["index"]).shape[-1] == 7
