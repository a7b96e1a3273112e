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
