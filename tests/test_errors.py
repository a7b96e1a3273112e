"""One base class for what the user must fix, caught once at the CLI boundary."""
from __future__ import annotations

import importlib
import inspect
import pkgutil

import edge
from edge import cli
from edge.errors import EmotionEdgeError, describe, display, one_line

# Exceptions that are not the user's to fix: the end of a finite source (control flow), a
# malformed message from another device on the broker (counted and logged by `fleet`), a
# page catalogue that lacks a string (a bug in the shipped file).
NOT_FOR_THE_USER = {"EndOfStream", "BadMessage", "CatalogueError"}


def _edge_error_classes() -> dict[str, type]:
    found = {}
    for info in pkgutil.walk_packages(edge.__path__, "edge."):
        if info.name.endswith("__main__"):
            continue
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, Exception) and \
                    obj.__module__ == info.name and name not in NOT_FOR_THE_USER:
                found[f"{info.name}.{name}"] = obj
    return found


def test_every_error_of_the_device_derives_from_the_one_base():
    classes = _edge_error_classes()
    assert {"edge.config.ConfigError", "edge.classifier.ModelError",
            "edge.sources.base.SourceError", "edge.cli.UsageError"} <= set(classes)
    strays = sorted(n for n, c in classes.items() if not issubclass(c, EmotionEdgeError))
    assert not strays, f"not an EmotionEdgeError: {strays}"


def test_each_keeps_its_builtin_base():
    from edge.config import ConfigError
    from edge.mqtt.spool import SpoolError
    from edge.sources.base import SourceError
    assert issubclass(ConfigError, ValueError) and issubclass(SourceError, RuntimeError)
    assert issubclass(SpoolError, OSError)


def test_one_line_and_describe():
    assert one_line(RuntimeError("first\nsecond")) == "first"
    assert one_line(RuntimeError("")) == "RuntimeError"
    assert display("caf\udce9") == "caf\\xe9"
    assert describe(FileNotFoundError(2, "No such file or directory", "x\udcff.toml")) == \
        "x\\xff.toml: No such file or directory"
    assert describe(ValueError("  bad\nmore")) == "bad"


def test_the_cli_turns_any_user_error_into_one_line_and_exit_2(monkeypatch, capsys):
    class NewError(EmotionEdgeError):      # a new kind of user error needs no CLI change
        pass

    def boom(args):
        raise NewError("[thing] x: wrong\nand a second line")
    monkeypatch.setattr(cli, "cmd_check", boom)
    assert cli.main(["check"]) == 2
    assert capsys.readouterr().err == "emotion-edge check: [thing] x: wrong\n"


def test_a_bug_is_exit_1(monkeypatch, capsys):
    def boom(args):
        raise KeyError("oops")
    monkeypatch.setattr(cli, "cmd_check", boom)
    assert cli.main(["check"]) == 1
    assert "internal error (KeyError" in capsys.readouterr().err
