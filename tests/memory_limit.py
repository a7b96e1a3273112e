"""Run a child process under a memory limit, as the unit's ``MemoryMax=`` does, and make
the files that would take more: decompression bombs, made at test time.

The limit is a memory cgroup (v2, or v1) when this machine lets the test make one (root,
as CI runs): the child is OOM-killed past it, exactly as under systemd. Elsewhere it is
``RLIMIT_AS`` over the address space the same command took with a harmless input, so an
allocation past the limit fails instead."""
from __future__ import annotations

import contextlib
import os
import resource
import struct
import subprocess
import uuid
import zlib
from pathlib import Path

import cv2
import numpy as np

V2, V1 = Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/memory")


class MemoryLimit:
    """``popen(cmd)`` children share one cgroup of ``limit`` bytes; ``peak`` is its high
    water mark (None without a cgroup)."""

    def __init__(self, limit: int, fallback_as: int | None = None):
        self.limit, self.fallback_as = limit, fallback_as
        self.group: Path | None = None
        self.kind = "RLIMIT_AS"

    def __enter__(self) -> "MemoryLimit":
        name = f"emotion-edge-test-{uuid.uuid4().hex[:8]}"
        for kind, parent, limit_file in (("cgroup v2", V2, "memory.max"),
                                         ("cgroup v1", V1, "memory.limit_in_bytes")):
            group = parent / name
            try:
                if kind == "cgroup v2" and "memory" not in (V2 / "cgroup.controllers").read_text():
                    continue
                group.mkdir()
            except OSError:
                continue
            try:
                (group / limit_file).write_text(str(self.limit))
                if kind == "cgroup v1":
                    with contextlib.suppress(OSError):   # no swap accounting: fine
                        (group / "memory.memsw.limit_in_bytes").write_text(str(self.limit))
                self.group, self.kind = group, kind
                break
            except OSError:
                group.rmdir()
        if self.group is None and self.fallback_as is None:
            raise RuntimeError("no memory cgroup here and no RLIMIT_AS fallback given")
        return self

    def popen(self, cmd: list, **kw) -> subprocess.Popen:
        group, fallback = self.group, self.fallback_as

        def enter():      # in the child, before exec
            if group is not None:
                (group / "cgroup.procs").write_text(str(os.getpid()))
            else:
                resource.setrlimit(resource.RLIMIT_AS, (fallback, fallback))

        return subprocess.Popen(cmd, preexec_fn=enter, **kw)

    def run(self, cmd: list, timeout: float, **kw) -> subprocess.CompletedProcess:
        with self.popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw) as p:
            try:
                out, err = p.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                out, err = p.communicate()
            return subprocess.CompletedProcess(cmd, p.returncode, out, err)

    @property
    def peak(self) -> int | None:
        if self.group is None:
            return None
        for f in ("memory.peak", "memory.max_usage_in_bytes"):
            with contextlib.suppress(OSError, ValueError):
                return int((self.group / f).read_text())
        return None

    def __exit__(self, *exc) -> None:
        if self.group is not None:
            with contextlib.suppress(OSError):
                self.group.rmdir()


def address_space_of(cmd: list, timeout: float = 300) -> int:
    """Peak virtual memory (VmPeak) of ``[python, -m, edge, ...]``, which the child reads
    from its own /proc/self/status as it exits: the base for an RLIMIT_AS fallback."""
    import sys
    wrapper = ("import runpy, sys, atexit\n"
               "def peak():\n"
               "    for line in open('/proc/self/status'):\n"
               "        if line.startswith('VmPeak:'):\n"
               "            sys.stderr.write('VMPEAK %d\\n' % (int(line.split()[1]) * 1024))\n"
               "atexit.register(peak)\n"
               "sys.argv = sys.argv[1:]\n"
               "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)\n")
    assert cmd[:3] == [sys.executable, "-m", "edge"]
    r = subprocess.run([sys.executable, "-c", wrapper, "edge", *cmd[3:]], capture_output=True,
                       text=True, timeout=timeout)
    return max(int(x.split()[1]) for x in r.stderr.splitlines() if x.startswith("VMPEAK "))


# --- bombs ---------------------------------------------------------------------------------

def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_bomb(path: Path, width: int, height: int, colour: bool = False) -> Path:
    """A valid PNG of ``width`` x ``height`` black pixels: all rows present, compressed to
    next to nothing (30000 x 30000 gray: under 1 MB)."""
    row = bytes(1 + width * (3 if colour else 1))          # filter byte 0, then black
    z = zlib.compressobj(9)
    idat = bytearray()
    for _ in range(height):
        idat += z.compress(row)
    idat += z.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2 if colour else 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", bytes(idat))
                     + _chunk(b"IEND", b""))
    return path


def jpeg_bomb(path: Path, width: int, height: int, progressive: bool) -> Path:
    """A real (tiny) JPEG whose frame header is changed to declare ``width`` x ``height``:
    a few hundred bytes; libjpeg allocates (and for a progressive one zero-fills) the whole
    picture's coefficients."""
    small = np.full((16, 16), 128, np.uint8)
    flags = [cv2.IMWRITE_JPEG_QUALITY, 50, cv2.IMWRITE_JPEG_PROGRESSIVE, int(progressive)]
    data = bytearray(cv2.imencode(".jpg", small, flags)[1].tobytes())
    sof = data.find(b"\xff\xc2" if progressive else b"\xff\xc0")
    assert sof > 0
    data[sof + 5:sof + 9] = struct.pack(">HH", height, width)
    path.write_bytes(bytes(data))
    return path
