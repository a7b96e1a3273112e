"""Fetch the face-detector models that registry.py lists: the two BlazeFace models out of
the ``mediapipe==0.10.14`` wheel, and copy those this repository ships in models/ (YuNet).

    python -m edge.detectors.fetch_models [--dest DIR] [--wheel FILE] [--verify] [--list]

``--list`` prints the model files' names, one a line (install.sh copies and checks those).

The device never installs mediapipe: we only need two small .tflite files that ship inside
its wheel. ``pip download --no-deps`` fetches the wheel from PyPI (the only place we may
download from), we unzip just those two members, check their sha256 and that LiteRT loads
them, and delete the wheel. The wheel is pinned to one platform (manylinux x86_64, CPython
3.11) on purpose: the .tflite files are platform independent, and one fixed wheel means the
same bytes on a laptop, CI and a Raspberry Pi (pip downloads for a foreign platform fine).

A file the repository ships (registry.py: ``package`` empty, e.g. YuNet's .tflite) is never
downloaded: it is copied from this checkout's models/ to DEST, and refused, like a fetched
one, when its sha256 is not the recorded one.

Licence: the MediaPipe face-detection models are Apache-2.0 (Google LLC, the MediaPipe
authors); keep that notice with them when you redistribute them. YuNet is MIT (opencv_zoo);
NOTICE says where each comes from.

Idempotent: when both files are already there with the right checksums it says so and
does nothing. ``--verify`` then runs every model in DEST once (install.sh does, on every
install: the files existing is not proof that LiteRT runs them here). ``--wheel`` takes an already-downloaded wheel for machines without PyPI.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from .. import litert
from ..errors import EmotionEdgeError, one_line
from .registry import model_files

MEDIAPIPE_VERSION = "0.10.14"
# One fixed wheel (see the module docstring): these four pin it exactly.
WHEEL_PLATFORM = "manylinux_2_17_x86_64"
WHEEL_PYTHON = "3.11"
WHEEL_ABI = "cp311"
# Every detector model file, name -> sha256 (registry.py; recorded from our first fetch,
# equal to the hashes MediaPipe itself pins for these assets in its Bazel workspace, so a
# mismatch means a damaged or different file).
MODELS: dict[str, str] = {name: m.sha256 for name, m in model_files().items()}
_FILES = model_files()
if {m.package for m in _FILES.values() if not m.in_repository} != \
        {f"mediapipe=={MEDIAPIPE_VERSION}"}:
    raise RuntimeError("registry.py lists a model from another wheel: teach fetch_models "
                       "to download it")

DEFAULT_DEST = Path(__file__).resolve().parents[2] / "models"
SHIPPED = DEFAULT_DEST   # where this checkout keeps the files the repository ships


class FetchError(EmotionEdgeError, RuntimeError):
    """A one-line, user-facing reason why the models could not be fetched."""


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def is_valid(path: Path) -> bool:
    """The file exists and has the recorded checksum."""
    return path.is_file() and sha256(path) == MODELS[path.name]


def check_loads(path: Path) -> None:
    """LiteRT can load the file (catches a runtime that cannot read it)."""
    try:
        litert.interpreter(path=path)
    except Exception as exc:  # LiteRT raises ValueError/RuntimeError with long texts
        raise FetchError(f"{path}: LiteRT cannot load it ({one_line(exc)})") from exc


def check_shipped(name: str) -> Path:
    """This checkout's copy of a file the repository ships, checked; else a FetchError."""
    path = SHIPPED / name
    if not path.is_file():
        raise FetchError(f"models/{name} is missing from {SHIPPED.parent}: the repository "
                         f"ships it; clone it again (or `git checkout models/{name}`)")
    got = sha256(path)
    if got != MODELS[name]:
        raise FetchError(f"models/{name}: sha256 {got[:12]}... is not the recorded "
                         f"{MODELS[name][:12]}... (a changed file); restore it with "
                         f"`git checkout models/{name}`")
    return path


def run_each(folder: Path, log=print) -> list[Path]:
    """Load every .tflite in ``folder`` with LiteRT and run one inference on zeros (a
    input of any size, as YuNet's, at 64 px a side). Files that exist prove nothing: a
    runtime that cannot run on this CPU crashes here (the model being tried is named
    first), not at the service's first frame."""
    import numpy as np
    paths = sorted(folder.glob("*.tflite"))
    if not paths:
        raise FetchError(f"{folder}: no .tflite models to run")
    for path in paths:
        print(f"    LiteRT runs {path.name} ...", end=" ", flush=True)
        try:
            interp = litert.interpreter(path=path)
            inputs = interp.get_input_details()
            if any(-1 in d["shape_signature"] for d in inputs):
                for d in inputs:
                    interp.resize_tensor_input(d["index"], [64 if n == -1 else int(n)
                                                            for n in d["shape_signature"]])
                interp.allocate_tensors()
                inputs = interp.get_input_details()
            for d in inputs:
                interp.set_tensor(d["index"], np.zeros(d["shape"], d["dtype"]))
            interp.invoke()
        except Exception as exc:  # LiteRT raises ValueError/RuntimeError with long texts
            print("failed")
            raise FetchError(f"{path}: LiteRT cannot run it ({one_line(exc)})") from exc
        print("ok", flush=True)
    return paths


def download_wheel(into: Path) -> Path:
    """``pip download`` the pinned mediapipe wheel (no dependencies, never installed)."""
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--platform", WHEEL_PLATFORM, "--python-version", WHEEL_PYTHON,
        "--implementation", "cp", "--abi", WHEEL_ABI,
        "--dest", str(into), f"mediapipe=={MEDIAPIPE_VERSION}",
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise FetchError(f"pip download of mediapipe=={MEDIAPIPE_VERSION} failed: {last}")
    wheels = sorted(into.glob("mediapipe-*.whl"))
    if not wheels:
        raise FetchError(f"pip download left no mediapipe wheel in {into}")
    return wheels[0]


def extract(wheel: Path, dest: Path, names: list[str]) -> None:
    """Copy only the named model files out of the wheel, atomically (tmp file + rename)."""
    try:
        with zipfile.ZipFile(wheel) as zf:
            for name in names:
                member = _FILES[name].member
                try:
                    data = zf.read(member)
                except KeyError:
                    raise FetchError(f"{wheel.name} has no {member}") from None
                tmp = dest / (name + ".part")
                tmp.write_bytes(data)
                os.replace(tmp, dest / name)
    except zipfile.BadZipFile:
        raise FetchError(f"{wheel} is not a valid wheel (zip) file") from None


def fetch(dest: Path = DEFAULT_DEST, wheel: Path | None = None, log=print) -> list[Path]:
    """Make sure every model is in ``dest``; fetch only what is missing or damaged."""
    dest.mkdir(parents=True, exist_ok=True)
    missing = [n for n in MODELS if not is_valid(dest / n)]
    if not missing:
        log(f"Face-detector models already present and verified in {dest}; nothing to do.")
        return [dest / n for n in MODELS]

    # Files the repository ships: copied from this checkout, never downloaded.
    for name in [n for n in missing if _FILES[n].in_repository]:
        src = check_shipped(name)
        if src.resolve() != (dest / name).resolve():
            tmp = dest / (name + ".part")
            tmp.write_bytes(src.read_bytes())
            os.replace(tmp, dest / name)
        check_loads(dest / name)
        log(f"  {dest / name} (copied from the repository, sha256 ok, LiteRT loads it)")
        missing.remove(name)
    if not missing:
        return [dest / n for n in MODELS]

    if wheel is not None:
        extract(wheel, dest, missing)
    else:
        log(f"Downloading mediapipe=={MEDIAPIPE_VERSION} wheel (~36 MB) to extract "
            f"{len(missing)} model file(s)...")
        with tempfile.TemporaryDirectory(prefix="mediapipe-wheel-") as tmp:
            extract(download_wheel(Path(tmp)), dest, missing)

    for name in missing:
        path = dest / name
        if not is_valid(path):
            got = sha256(path)
            path.unlink(missing_ok=True)
            raise FetchError(f"{name}: sha256 {got[:12]}... does not match the recorded "
                             f"{MODELS[name][:12]}...; removed it")
        check_loads(path)
        log(f"  {path} ({path.stat().st_size // 1024} KiB, sha256 ok, LiteRT loads it)")
    return [dest / n for n in MODELS]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m edge.detectors.fetch_models",
        description="Fetch the BlazeFace face-detection models (Apache-2.0) from the "
                    f"mediapipe=={MEDIAPIPE_VERSION} wheel on PyPI, without installing it, "
                    "and copy the ones this repository ships (YuNet, MIT).")
    ap.add_argument("--dest", type=Path, default=DEFAULT_DEST,
                    help=f"folder to put the model files in (default: {DEFAULT_DEST})")
    ap.add_argument("--wheel", type=Path, default=None,
                    help="use this already-downloaded mediapipe wheel instead of pip download")
    ap.add_argument("--verify", action="store_true",
                    help="then load every .tflite in DEST with LiteRT and run "
                         "one inference")
    ap.add_argument("--list", action="store_true",
                    help="only print the detector model files' names, one a line")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(MODELS))
        return 0
    try:
        fetch(args.dest, args.wheel)
        if args.verify:
            run_each(args.dest)
    except (FetchError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
