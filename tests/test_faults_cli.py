"""Issue #27, the command line: argparse conventions for every subcommand, one error
boundary (one line and exit 2 for the user, exit 1 and --debug for a bug), outputs that
never overwrite inputs, and logs, configs and paths that are not what they should be."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from edge import cli, tail

EMOTION_EDGE = [sys.executable, "-m", "edge"]
T0 = "2026-11-21T08:00:0{}.000Z"


def ee(*args, cwd=ROOT, timeout=120, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([*EMOTION_EDGE, *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, **kw)


def error_lines(stderr: str) -> list[str]:
    return stderr.strip().splitlines()   # LiteRT's own start-up line is gone (edge/litert.py)


def write_log(path: Path, n: int = 5) -> list[str]:
    lines = [json.dumps({"v": 1, "ts": T0.format(i), "event": "face_appeared", "track": i,
                         "emotion": "happy", "score": 0.8}) for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return lines


# --- conventions -----------------------------------------------------------------------------

@pytest.mark.parametrize("cmd", ["run", "classify", "check", "config", "tail", "bench"])
def test_every_subcommand_has_help(cmd):
    r = ee(cmd, "--help", timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout, r.stdout + r.stderr
    r = ee(cmd, "-h", timeout=60)
    assert r.returncode == 0 and "usage:" in r.stdout


def test_options_before_and_after_positional_arguments(tmp_path, scenes):
    log = tmp_path / "events.jsonl"
    lines = write_log(log)
    for argv in (["tail", "--from-start", "--until-eof", "--json", log],
                 ["tail", log, "--from-start", "--until-eof", "--json"],
                 ["tail", "--json", log, "--until-eof", "--from-start"]):
        r = ee(*argv, timeout=60)
        assert r.returncode == 0 and r.stdout.splitlines() == lines, (argv, r.stderr)
    photo = scenes / "pyfeat_single_face.jpg"
    outs = []
    for argv in (["classify", "--json", photo, scenes / "facerec_obama.jpg"],
                 ["classify", photo, "--json", scenes / "facerec_obama.jpg"],
                 ["classify", photo, scenes / "facerec_obama.jpg", "--json"]):
        r = ee(*argv)
        assert r.returncode == 0, r.stderr
        outs.append([json.loads(x) for x in r.stdout.splitlines()])
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) == 2
    r = ee("-v", "config", "--validate", ROOT / "edge/default.toml", timeout=60)
    assert r.returncode == 0 and r.stdout.strip().endswith(": ok")
    r = ee("check", "--no-camera", "--config", _config(tmp_path), timeout=60)
    r2 = ee("check", "--config", _config(tmp_path), "--no-camera", timeout=60)
    checked = [[x.split()[1] for x in p.stdout.splitlines() if x.startswith("ok")]
               for p in (r, r2)]
    assert r.returncode == r2.returncode == 0 and checked[0] == checked[1]
    assert "camera" not in checked[0]


def _config(tmp_path: Path) -> Path:
    p = tmp_path / "config.toml"
    p.write_text(f'[log]\ndir = "{tmp_path / "logs"}"\n')
    return p


def test_bench_passes_its_options_through():
    r = ee("bench", "--help", timeout=60)
    assert r.returncode == 0 and "--skip-peer" in r.stdout
    r = ee("bench", "--no-such-option", timeout=60)
    assert r.returncode == 2 and "unrecognized arguments: --no-such-option" in r.stderr


def test_unknown_options_and_commands_are_usage_errors():
    for argv in (["run", "--nope"], ["nope"], ["tail", "--nope"], ["classify"]):
        r = ee(*argv, timeout=60)
        assert r.returncode == 2 and "usage:" in r.stderr and "Traceback" not in r.stderr


def test_tail_n_stops_after_n_lines_and_json_passes_them_through(tmp_path):
    log = tmp_path / "events.jsonl"
    lines = write_log(log, 8)
    r = ee("tail", "--from-start", "-n", "3", "--json", log, timeout=60)
    assert r.returncode == 0 and r.stdout.splitlines() == lines[:3]
    r = ee("tail", log, "-n", "2", "--from-start", timeout=60)
    assert r.returncode == 0
    assert [x.split(" ", 1)[1] for x in r.stdout.splitlines()[:2]] == \
        ["face #0 appeared  happy 0.80", "face #1 appeared  happy 0.80"]
    r = ee("tail", "-n", "0", log, timeout=60)
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1


# --- tail on logs that are not what they should be ------------------------------------------

@pytest.mark.parametrize("variant", ["folder", "fifo"])
def test_tail_on_something_that_is_not_a_log_file_is_one_line(tmp_path, variant):
    target = tmp_path / "events.jsonl"
    if variant == "folder":
        target = tmp_path
    else:
        os.mkfifo(target)
    r = ee("tail", target, "--until-eof", timeout=30)
    assert r.returncode == 2 and len(error_lines(r.stderr)) == 1, r.stderr
    assert "Traceback" not in r.stderr


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_tail_on_an_unreadable_log_is_one_line(tmp_path):
    log = tmp_path / "events.jsonl"
    write_log(log)
    log.chmod(0)
    r = ee("tail", log, "--until-eof", timeout=30)
    assert r.returncode == 2 and "cannot read it" in r.stderr


def test_tail_skips_lines_whose_fields_have_unexpected_types(tmp_path):
    good = write_log(tmp_path / "good.jsonl", 2)
    odd = [{"track": [1]}, {"track": "three"}, {"emotion": {"a": 1}}, {"score": "high"},
           {"box": "1,2,3,4"}, {"ts": 5}, {"ts": "yesterday"}, {"event": 7},
           {"duration_s": None}, {"emotion_share": {"happy": "most"}}, {"faces_seen": 1.5},
           {"track": True}, {"score": float("inf")}]
    base = json.loads(good[0])
    lines = [good[0], *(json.dumps({**base, **o}) for o in odd), good[1],
             '{"v":1,"ts":"2026-11-21T08:00:09.000Z","event":"summary","emotion_share":[1]}']
    log = tmp_path / "events.jsonl"
    log.write_text("\n".join(lines) + "\n")
    out, err = io.StringIO(), io.StringIO()
    assert tail.main([str(log), "--from-start", "--until-eof"], out, err) == 0
    shown = out.getvalue().splitlines()
    assert len(shown) == 3 and shown[-1].endswith(f"{len(odd) + 1} malformed line(s) skipped")
    assert err.getvalue().count("skipped a malformed line") == len(odd) + 1


# --- configs that are not files ----------------------------------------------------------------

@pytest.mark.parametrize("variant, message", [
    ("folder", "is a folder"), ("fifo", "not a regular file"), ("latin1", "not UTF-8"),
    ("binary", "not UTF-8"), ("missing", "config file not found"),
    ("deep", "not valid TOML")])
def test_config_paths_that_are_not_config_files_are_one_line(tmp_path, variant, message):
    path = tmp_path / "config.toml"
    if variant == "folder":
        path.mkdir()
    elif variant == "fifo":
        os.mkfifo(path)
    elif variant == "latin1":
        path.write_bytes('[source]\nuri = "caméra"\n'.encode("latin-1"))
    elif variant == "binary":
        path.write_bytes((ROOT / "models/emotion_int8.tflite").read_bytes()[:4000])
    elif variant == "deep":
        path.write_text("a = " + "[" * 5000 + "]" * 5000 + "\n")
    for cmd in (["run"], ["check"], ["config", "--validate", path], ["classify", ROOT]):
        argv = [*cmd, "--config", path] if cmd[0] != "config" else cmd
        r = ee(*argv, timeout=60)
        assert r.returncode == 2, (cmd, r.stderr)
        lines = error_lines(r.stderr)
        assert len(lines) == 1 and message in lines[0], (cmd, r.stderr)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_config_is_one_line(tmp_path):
    path = _config(tmp_path)
    path.chmod(0)
    r = ee("run", "--config", path, timeout=60)
    assert r.returncode == 2 and "cannot read it" in r.stderr


def test_config_path_with_bytes_that_are_not_utf8(tmp_path):
    path = tmp_path / os.fsdecode(b"conf\xe9.toml")
    path.write_text("[tracker]\niou = 1.5\n")
    r = subprocess.run([*EMOTION_EDGE, "config", "--validate", os.fsencode(path)], cwd=ROOT,
                       capture_output=True, timeout=60)
    err = r.stderr.decode()
    assert r.returncode == 2 and "conf\\xe9.toml: [tracker] iou: 1.5 is outside 0..1" in err


# --- classify --annotate: never over an input, never silent ----------------------------------

def photos(tmp_path: Path, scenes: Path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("pyfeat_single_face.jpg", "facerec_obama.jpg"):
        shutil.copy(scenes / name, folder / name)
    return folder


def test_annotate_into_the_folder_it_reads_is_refused_and_keeps_the_originals(tmp_path, scenes):
    folder = photos(tmp_path, scenes)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    for target in (folder, folder / ".", tmp_path / "link"):
        if target.name == "link":
            target.symlink_to(folder)
        r = ee("classify", folder, "--annotate", target)
        assert r.returncode == 2 and "would overwrite the originals" in r.stderr, r.stderr
        assert len(error_lines(r.stderr)) == 1
    r = ee("classify", folder / "facerec_obama.jpg", "--annotate", folder)
    assert r.returncode == 2
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before


def test_annotate_onto_a_file_or_an_unwritable_place_is_an_error(tmp_path, scenes):
    folder = photos(tmp_path, scenes)
    afile = tmp_path / "out.jpg"
    afile.write_bytes(b"keep me")
    r = ee("classify", folder, "--annotate", afile)
    assert r.returncode == 2 and "is not a folder" in r.stderr and afile.read_bytes() == b"keep me"
    r = ee("classify", folder, "--annotate", "/proc/emotion-edge-out")
    assert r.returncode == 2 and "cannot write there" in r.stderr, r.stderr


def test_annotate_writes_one_copy_per_input_even_with_equal_names(tmp_path, scenes):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    shutil.copy(scenes / "pyfeat_single_face.jpg", a / "x.jpg")
    shutil.copy(scenes / "facerec_obama.jpg", b / "x.jpg")
    out = tmp_path / "out"
    r = ee("classify", a, b, "--annotate", out)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == ["x-2.jpg", "x.jpg"]


# --- the boundary itself -------------------------------------------------------------------------

def test_a_bug_is_exit_1_with_one_line_and_the_traceback_only_with_debug(monkeypatch, capsys):
    def broken(args):
        raise ZeroDivisionError("division by zero")
    monkeypatch.setattr(cli, "cmd_config", broken)
    assert cli.main(["config"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "internal error" in err[0] and "--debug" in err[0]
    with pytest.raises(ZeroDivisionError):
        cli.main(["--debug", "config"])


def test_os_errors_name_the_file(monkeypatch, capsys):
    def denied(args):
        raise PermissionError(13, "Permission denied", "/var/log/emotion-edge/events.jsonl")
    monkeypatch.setattr(cli, "cmd_config", denied)
    assert cli.main(["config"]) == 2
    assert capsys.readouterr().err.strip() == \
        "emotion-edge config: /var/log/emotion-edge/events.jsonl: Permission denied"
