"""One validated configuration: TOML sections mapped onto each stage's own dataclass.

An unknown section or key, a wrong type, or an impossible value is one clear error naming
the key (``config.toml: [tracker] iou: 1.5 is outside 0..1``). Every key has a default, so
an empty file (or none) is a working configuration.
"""
from __future__ import annotations

import dataclasses
import math
import os
import stat
import textwrap
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .classifier import ClassifierConfig
from .detectors import DetectorConfig
from .errors import EmotionEdgeError, display
from .micro import MicroConfig
from .settings import check
from .sinks import SECTIONS as SINK_SECTIONS, config_class
from .sources import SourceConfig
from .tracker import TrackerConfig, upgrade_legacy_keys


class ConfigError(EmotionEdgeError, ValueError):
    """A configuration problem, phrased for the person editing the file: always one line
    (a key or file name with a newline or other control character in it is escaped)."""

    def __init__(self, message: str):
        super().__init__("".join(c if c.isprintable() else repr(c)[1:-1] for c in message))


@dataclass
class MonitorConfig:
    """Section ``[monitor]``: the pipeline as a whole."""
    summary_interval: float = field(default=60.0, metadata={
        "doc": "seconds between summary lines in the log (faces seen, emotion shares)",
        "range": "> 0", "unit": "seconds"})
    max_frames: int = field(default=0, metadata={"doc": "stop after this many frames (0: never)",
        "range": ">= 0"})
    save_faces: bool = field(default=False, metadata={
        "doc": "store face crops as images (off by default: privacy; nothing leaves the device)"})
    faces_dir: str = field(default="", metadata={
        "doc": "where face crops go when save_faces is on (default: <log dir>/faces)"})

    def __post_init__(self):
        check(self)   # the ranges and choices in the fields' metadata


# The registry: every [section] of the config file, each with the config class that lives
# beside its stage, in the order of the reference (edge/default.toml). The outputs come from
# the sinks' own registry (edge/sinks/__init__.py SECTIONS): a new output is one line there.
STAGES: dict[str, type] = {
    "source": SourceConfig,
    "detector": DetectorConfig,
    "classifier": ClassifierConfig,
    "tracker": TrackerConfig,
    "monitor": MonitorConfig,
    "micro": MicroConfig,
}
SECTIONS: dict[str, type] = {**STAGES, **{name: config_class(name) for name in SINK_SECTIONS}}

# The whole configuration: one attribute per section (``cfg.tracker.iou``), made from the
# registry so that no list of sections is kept by hand a second time.
Config = dataclasses.make_dataclass(
    "Config", [(name, cls, field(default_factory=cls)) for name, cls in SECTIONS.items()])
Config.__module__ = __name__
Config.__doc__ = "The validated configuration: one attribute per [section] of SECTIONS."


def default_config_path() -> Path | None:
    """$CONFIGURATION_DIRECTORY/config.toml (set by systemd) when it exists."""
    d = os.environ.get("CONFIGURATION_DIRECTORY")
    if d and (Path(d) / "config.toml").is_file():
        return Path(d) / "config.toml"
    return None


def load(path: str | Path | None = None, overrides: dict[str, dict[str, Any]] | None = None) -> Config:
    """Read and validate a TOML file (or only defaults), then apply ``overrides``
    (``{"source": {"uri": "0"}}``, e.g. from CLI flags), validated the same way."""
    raw: dict[str, Any] = {}
    where = "config"
    if os.environ.get("LOGS_DIRECTORY"):  # systemd's LogsDirectory=; the file may override it
        raw["log"] = {"dir": os.environ["LOGS_DIRECTORY"].split(":")[0]}
    if path is not None:
        path = Path(path)
        where = display(path)
        for section, values in _read_toml(path, where).items():
            if isinstance(values, dict) and isinstance(raw.get(section), dict):
                raw[section].update(values)
            else:
                raw[section] = values
    for section, values in (overrides or {}).items():
        raw.setdefault(section, {}).update(values)
    return from_dict(raw, where)


def _read_toml(path: Path, where: str) -> dict[str, Any]:
    """The file's TOML table, or one ConfigError line: missing, a folder, a FIFO (which
    would block), unreadable, not UTF-8, not TOML."""
    try:
        st = os.stat(path)
        if stat.S_ISDIR(st.st_mode):
            raise ConfigError(f"{where}: is a folder, not a config file")
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{where}: not a regular file")
        if st.st_size > 1_000_000:
            raise ConfigError(f"{where}: {st.st_size} bytes is too large for a config file")
        data = path.read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"{where}: config file not found") from None
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read it ({exc.strerror})") from None
    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{where}: not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{where}: not valid TOML ({exc})") from None
    except RecursionError:
        raise ConfigError(f"{where}: not valid TOML (nested too deeply)") from None


def from_dict(raw: dict[str, Any], where: str = "config") -> Config:
    built = {}
    for section, values in raw.items():
        if section not in SECTIONS:
            raise ConfigError(f"{where}: unknown section [{section}]; known: "
                              f"{', '.join(SECTIONS)}")
        if not isinstance(values, dict):
            raise ConfigError(f"{where}: {section} must be a [section], not a value")
        if section == "tracker":
            values = _upgrade_tracker(raw, values, f"{where}: [tracker]")
        built[section] = _build(SECTIONS[section], values, f"{where}: [{section}]")
    return Config(**built)


def _upgrade_tracker(raw: dict[str, Any], values: dict[str, Any], where: str) -> dict[str, Any]:
    """Old frame-counting [tracker] keys, read as seconds at the [source] fps."""
    fps = raw.get("source", {}).get("fps", SourceConfig.fps) if isinstance(
        raw.get("source"), dict) else SourceConfig.fps
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0 < fps <= 240:
        fps = SourceConfig.fps     # [source] reports its own bad fps
    try:
        return upgrade_legacy_keys(values, float(fps), where)
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None


def _build(cls: type, values: dict[str, Any], where: str):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in names:
            raise ConfigError(f"{where} {key}: unknown key; known: {', '.join(sorted(names))}")
        kwargs[key] = _coerce(value, hints[key], f"{where} {key}")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, OverflowError) as exc:
        raise ConfigError(f"{where} {exc}") from None


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a type hint; ints are accepted where floats are expected."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, where)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0] if errors else f"{where}: invalid value")
    if hint is Any:
        return value
    if dataclasses.is_dataclass(hint):  # a sub-section, e.g. [detector.far]
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a [sub-section] or table, got {value!r}")
        return _build(hint, value, where.replace("] ", ".", 1) + "]")
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, where) for v, a in zip(value, args))
        item = args[0] if args else Any
        out = [_coerce(v, item, where) for v in value]
        return tuple(out) if origin is tuple else out
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: expected a table {{key = value}}, got {value!r}")
        kt, vt = args if args else (Any, Any)
        return {_coerce(k, kt, where): _coerce(v, vt, f"{where}.{k}") for k, v in value.items()}
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        try:
            value = float(value)
        except OverflowError:
            raise ConfigError(f"{where}: {value} is too large") from None
        if not math.isfinite(value):
            raise ConfigError(f"{where}: expected a finite number, got {value}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where}: expected a whole number, got {value!r}")
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: expected true or false, got {value!r}")
        return value
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where}: expected a string in quotes, got {value!r}")
        return value
    if isinstance(hint, type) and not isinstance(value, hint):
        raise ConfigError(f"{where}: expected {hint.__name__}, got {value!r}")
    return value


def reference() -> str:
    """The config reference as TOML with every key, its default and its doc: this is
    ``edge/default.toml`` (a test keeps the two the same) and ``emotion-edge config``."""
    lines = ["# emotion-edge configuration. Every key is optional: what is left out keeps the",
             "# default shown here. Check a file with: emotion-edge config --validate FILE",
             ""]
    for section, cls in SECTIONS.items():
        lines += _reference_section(section, cls)
    return "\n".join(lines)


def _reference_section(name: str, cls: type) -> list[str]:
    lines, subs = [f"[{name}]"], []
    for f in dataclasses.fields(cls):
        default = f.default if f.default is not dataclasses.MISSING else \
            f.default_factory() if f.default_factory is not dataclasses.MISSING else None
        doc = f.metadata.get("doc", "")
        if dataclasses.is_dataclass(default):   # sub-sections follow their section's keys
            subs += _reference_section(f"{name}.{f.name}", type(default))
            continue
        lines += ["# " + line for line in textwrap.wrap(doc, 86)]
        lines.append(f"{f.name} = {_toml(default)}" if default is not None
                     else f"# {f.name} = (unset)")
    return lines + [""] + subs


def config_value(cfg: Config, key: str) -> str:
    """``section.key``'s value in ``cfg`` as one line for a shell (``emotion-edge config
    --get``): switches as true/false, unset as an empty line, lists and tables as TOML."""
    section, *path = key.split(".")
    if section not in SECTIONS:
        raise ConfigError(f"--get {key}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
    value: Any = getattr(cfg, section)
    for name in path or [""]:       # through sub-sections: detector.far.every
        names = [f.name for f in dataclasses.fields(value)]
        if name not in names:
            raise ConfigError(f"--get {key}: unknown key; known: {', '.join(sorted(names))}")
        value = getattr(value, name)
    if dataclasses.is_dataclass(value):
        names = sorted(f.name for f in dataclasses.fields(value))
        raise ConfigError(f"--get {key}: a section, not a key; its keys: {', '.join(names)}")
    if value is None:
        return ""
    return value if isinstance(value, str) else _toml(value)


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_toml(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_toml(x)}" for k, x in v.items()) + " }"
    return repr(v)
