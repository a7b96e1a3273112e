"""The config schema: defaults, validation messages, CLI overrides, the shipped default file."""
from __future__ import annotations

import pytest

from conftest import ROOT
from edge import config


def test_default_toml_is_the_generated_reference():
    """edge/default.toml is what install.sh copies to /etc: it must list every key."""
    assert (ROOT / "edge" / "default.toml").read_text() == config.reference() + "\n"


def test_default_file_loads_to_the_defaults():
    assert config.load(ROOT / "edge" / "default.toml") == config.load(None)


@pytest.mark.parametrize("raw, message", [
    ({"tracker": {"smoothing": 0}}, "[tracker] smoothing: 0.0 is outside (0, 1]"),
    ({"detector": {"kind": "yolo"}}, "[detector] kind: 'yolo' is not one of"),
    ({"source": {"fps": "fast"}}, "[source] fps: expected a number"),
    ({"log": {"max_bytes": 1.5}}, "[log] max_bytes: expected a whole number"),
    ({"gpio": {"enabled": 1}}, "[gpio] enabled: expected true or false"),
    ({"gpio": {"pins": {"happy": 99}}}, "pins.happy: 99 is not a BCM GPIO number"),
    ({"classifier": {"modle": "x"}}, "[classifier] modle: unknown key"),
    ({"monitor": 3}, "monitor must be a [section]"),
])
def test_bad_values_name_the_key(raw, message):
    with pytest.raises(config.ConfigError) as err:
        config.from_dict(raw, "test.toml")
    assert message in str(err.value)
    assert str(err.value).startswith("test.toml")


def test_overrides_beat_the_file_and_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("LOGS_DIRECTORY", "/var/log/emotion-edge")
    assert config.load(None).log.dir == "/var/log/emotion-edge"
    f = tmp_path / "c.toml"
    f.write_text('[log]\ndir = "/srv/logs"\n[source]\nuri = "0"\nfps = 15\n')
    cfg = config.load(f, {"source": {"uri": "clip.mp4"}})
    assert cfg.log.dir == "/srv/logs"
    assert cfg.source.uri == "clip.mp4" and cfg.source.fps == 15.0


def test_one_registry_builds_config_and_reference():
    import dataclasses
    from edge.sinks import SECTIONS as SINK_SECTIONS
    assert [f.name for f in dataclasses.fields(config.Config)] == list(config.SECTIONS)
    assert set(SINK_SECTIONS) <= set(config.SECTIONS)       # a new output: one line there
    # ([detector.far]: a sub-section, after its section's keys)
    assert [x[1:-1] for x in config.reference().splitlines()
            if x.startswith("[") and "." not in x] == list(config.SECTIONS)


def test_every_declared_range_and_choice_is_well_formed_and_checked():
    import dataclasses
    from edge.settings import Range
    declared = 0
    for section, cls in config.SECTIONS.items():
        for f in dataclasses.fields(cls):
            if "range" in f.metadata:
                declared += 1
                rng = Range.parse(f.metadata["range"])          # raises on a typo
                bad = rng.lo - 1 if not rng.lo_open else rng.lo
                with pytest.raises(config.ConfigError, match=rf"^t: \[{section}\] {f.name}: "):
                    config.from_dict({section: {f.name: type(f.default)(bad)}}, "t")
            if "choices" in f.metadata:
                declared += 1
                with pytest.raises(config.ConfigError, match=r"is not one of"):
                    config.from_dict({section: {f.name: "no-such-choice"}}, "t")
    assert declared >= 40


@pytest.mark.parametrize("text, value, message", [
    ("(0, 1)", 1.5, "1.5 is outside 0..1"),
    ("(0, 1)", 0.0, "0.0 is outside (0, 1)"),
    ("(0, 1]", 0.0, "0.0 is outside (0, 1]"),
    ("0.1..2.0", 3.0, "3.0 is outside 0.1..2.0"),
    (">= 1", 0, "0 must be at least 1"),
    ("> 0", 0.0, "0.0 must be more than 0"),
    ("0..1", 1.0, None),
])
def test_range_messages(text, value, message):
    from edge.settings import Range
    assert Range.parse(text).problem(value) == message


def test_config_get_prints_what_the_program_reads(tmp_path, capsys):
    from edge import cli
    f = tmp_path / "c.toml"
    f.write_text('[web]\nenabled = true\nbind = "0.0.0.0"\npassword = "a long password"\n')
    assert cli.main(["config", "--config", str(f), "--get", "web.bind", "web.enabled",
                     "web.port", "gpio.pin_factory"]) == 0
    assert capsys.readouterr().out == "0.0.0.0\ntrue\n8080\n\n"
    assert cli.main(["config", "--get", "web.nope"]) == 2
    assert "--get web.nope: unknown key" in capsys.readouterr().err


def test_config_get_reads_sub_sections(tmp_path, capsys):
    from edge import cli
    f = tmp_path / "c.toml"
    f.write_text("[detector.far]\nevery = 6\n")
    assert cli.main(["config", "--config", str(f), "--get", "detector.far.every",
                     "detector.far.smallest_face"]) == 0
    assert capsys.readouterr().out == "6\n24\n"
    assert cli.main(["config", "--get", "detector.far"]) == 2
    assert "--get detector.far: a section, not a key; its keys: every," in capsys.readouterr().err
