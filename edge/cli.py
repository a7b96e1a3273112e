"""``emotion-edge``: run the monitor, classify images, tail the log, check the setup."""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import tempfile
from pathlib import Path

from .config import ConfigError, config_value, default_config_path, load, reference
from .errors import EmotionEdgeError, describe, display, one_line
from .sinks.base import SinkError


class UsageError(EmotionEdgeError, RuntimeError):
    """A command used in a way that cannot work (an output that would overwrite an input,
    a folder that cannot be written); one line for the user."""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML config file (default: "
                   "$CONFIGURATION_DIRECTORY/config.toml if present, else built-in defaults)")
    p.add_argument("--model", help="int8 .tflite emotion model (sidecar .json beside it)")
    from .detectors.registry import KINDS
    p.add_argument("--detector", help=f"face detector: {', '.join(KINDS)} "
                   f"(default {next(iter(KINDS))}; `emotion-edge config` says what each finds)")


def _overrides(args) -> dict:
    o: dict[str, dict] = {}
    if getattr(args, "source", None):
        o.setdefault("source", {})["uri"] = args.source
    if getattr(args, "model", None):
        o.setdefault("classifier", {})["model"] = args.model
    if getattr(args, "detector", None):
        o.setdefault("detector", {})["kind"] = args.detector
    if getattr(args, "log_dir", None):
        o.setdefault("log", {})["dir"] = args.log_dir
    if getattr(args, "max_frames", None):
        o.setdefault("monitor", {})["max_frames"] = args.max_frames
    if getattr(args, "fast", False):
        o.setdefault("source", {})["realtime"] = False
    if getattr(args, "loop", False):
        o.setdefault("source", {})["loop"] = True
    if getattr(args, "web", False):
        o.setdefault("web", {})["enabled"] = True
    if getattr(args, "mock_gpio", False):
        o.setdefault("gpio", {}).update(enabled=True, pin_factory="mock")
    return o


def _config(args):
    return load(args.config or default_config_path(), _overrides(args))


# --- run -----------------------------------------------------------------------------------

def demo_allowed(args) -> bool:
    """May ``[source] uri = "auto"`` with no camera play the bundled sample clip? Only for a
    person trying the monitor out: ``run`` on a terminal, with no config file, not under
    systemd. A service never shows a recording as its camera: it waits for one."""
    under_systemd = any(os.environ.get(v) for v in ("INVOCATION_ID", "NOTIFY_SOCKET"))
    return (getattr(args, "config", None) is None and default_config_path() is None
            and not under_systemd and sys.stdin.isatty())


def cmd_run(args) -> int:
    from .notify import SystemdNotifier
    from .pipeline import Monitor
    from .sources import SAMPLE_CLIP, create_source

    cfg = _config(args)
    source = create_source(cfg.source, demo=demo_allowed(args))
    if getattr(source, "uri", None) == str(SAMPLE_CLIP) and cfg.source.uri == "auto":
        print(f"no camera found: playing the bundled sample clip {SAMPLE_CLIP.name} (a "
              f"recording, not a camera). A service, or a run with --config, waits for a "
              f"camera instead.", file=sys.stderr, flush=True)
    monitor = Monitor(cfg, source=source, notifier=SystemdNotifier())
    signal.signal(signal.SIGTERM, lambda *_: monitor.stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: monitor.stop("SIGINT"))
    signal.signal(signal.SIGHUP, lambda *_: monitor.reopen_logs())
    st = monitor.run()
    first = f"{st.first_result_s:.2f} s" if st.first_result_s is not None else "none"
    print(f"stopped ({monitor.stop_reason}): {st.frames} frames in {st.elapsed_s:.1f} s "
          f"({st.fps:.1f} fps), first result after {first}", flush=True)
    if monitor.capture_stuck:
        # The log is closed; a thread wedged in a camera driver must not hold the exit
        # past systemd's TimeoutStopSec (nor abort in OpenCV's teardown).
        sys.stderr.flush()
        os._exit(0)
    return 0


# --- classify --------------------------------------------------------------------------------

def cmd_classify(args) -> int:
    from .classifier import FaceClassifier
    from .detectors import create_detector
    from .photo import annotate, classify_image
    from .sources import SourceError
    from .sources.images import image_files, read_image

    cfg = _config(args)
    classifier = FaceClassifier(cfg.classifier)
    detector = create_detector(cfg.detector)
    paths = image_files(args.images)
    out = AnnotateDir(args.annotate, paths) if args.annotate else None
    if out is not None:   # the LED colours' hues, light enough for the labels' dark text
        from .photo import bgr_colours
        from .web.palette import screen_colours
        screen_bgr = bgr_colours(screen_colours(cfg.gpio.colours))
    status = 0
    for path in paths:
        try:
            image = read_image(path)
        except SourceError as exc:
            print(exc, file=sys.stderr)
            status = 1
            continue
        faces = classify_image(image, detector, classifier)
        if args.json:
            print(json.dumps({"image": display(str(path)), "faces": faces}))
        else:
            desc = ", ".join(f"{f['emotion']} {max(f['scores'].values()):.2f} at {f['box']}"
                             for f in faces) or "no faces"
            print(f"{display(str(path))}: {desc}")
        if out is not None:
            annotate(image, faces, screen_bgr)
            out.write(path, image)
    return status


class AnnotateDir:
    """Where ``classify --annotate`` writes its copies: never over an input, never in
    silence (a copy that cannot be written stops the command)."""

    def __init__(self, folder: Path, inputs: list[Path]):
        self.folder = folder
        name = display(str(folder))
        if folder.exists() and not folder.is_dir():
            raise UsageError(f"--annotate {name}: exists and is not a folder")
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=folder, prefix=".annotate-"):
                pass
        except OSError as exc:
            raise UsageError(f"--annotate {name}: cannot write there "
                             f"({exc.strerror or exc})") from None
        here = folder.resolve()
        for p in inputs:
            if p.resolve().parent == here:
                raise UsageError(f"--annotate {name}: holds the input {display(str(p))}; "
                                 f"its copies would overwrite the originals. Choose another "
                                 f"folder")
        self._used: set[str] = set()

    def write(self, src: Path, image) -> None:
        import cv2

        from .sources.base import IMAGE_SUFFIXES

        stem, ext = src.stem, src.suffix.lower()
        if ext not in IMAGE_SUFFIXES:
            ext = ".png"
        name, n = f"{stem}{ext}", 1
        while name in self._used:          # two inputs of one name, from two folders
            n += 1
            name = f"{stem}-{n}{ext}"
        self._used.add(name)
        target = self.folder / name
        ok, data = cv2.imencode(ext, image)
        try:
            if not ok:
                raise OSError(0, "the image could not be encoded")
            tmp = target.with_name(f".{name}.tmp")
            tmp.write_bytes(data.tobytes())
            os.replace(tmp, target)
        except OSError as exc:
            raise UsageError(f"--annotate: cannot write {display(str(target))} "
                             f"({exc.strerror or exc})") from None


# --- check, config, tail, bench ------------------------------------------------------------

def cmd_check(args) -> int:
    from .check import run_checks

    return run_checks(_config(args), camera=not args.no_camera)


def cmd_report(args) -> int:
    from .web.report import ReportError, write_report

    cfg = load(args.config or default_config_path())
    log = args.log or Path(cfg.log.dir) / cfg.log.file
    try:
        n = write_report(log, args.date, args.output, cfg.gpio.colours, cfg.web.language)
    except ReportError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{args.output}: {n} summaries of {args.date}")
    return 0


def cmd_config(args) -> int:
    if args.validate:
        from .check import check_sign_in
        cfg = load(args.validate)
        try:   # a password file that yields no password is as wrong as a bad key
            check_sign_in(cfg)
        except SinkError as exc:
            raise ConfigError(str(exc)) from None
        print(f"{display(str(args.validate))}: ok")
        return 0
    if args.get:
        cfg = load(args.config or default_config_path())
        for key in args.get:
            print(config_value(cfg, key))
        return 0
    print(reference())
    return 0


def cmd_tail(args) -> int:
    from . import tail

    if args.logfile is None:     # no log named: the configured one, if it is there
        cfg = load(default_config_path())
        configured = Path(cfg.log.dir) / cfg.log.file
        if configured.exists():
            args.logfile = configured
    return tail.run(args)


def cmd_fleet(args) -> int:
    from .mqtt.fleet import run

    return run(args)


def cmd_bench(args) -> int:
    import runpy
    bench = Path(__file__).resolve().parents[1] / "bench" / "pipeline.py"
    if not bench.exists():
        raise UsageError("the pipeline benchmark ships with the source repository "
                         "(bench/pipeline.py)")
    sys.argv = [str(bench), *args.rest]
    runpy.run_path(str(bench), run_name="__main__")
    return 0


def _global_options() -> argparse.ArgumentParser:
    g = argparse.ArgumentParser(add_help=False)
    g.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    g.add_argument("--debug", action="store_true",
                   help="show the traceback of an internal error (a bug)")
    return g


def build_parser() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    from . import tail

    parser = argparse.ArgumentParser(prog="emotion-edge", description=__doc__,
                                     parents=[_global_options()])
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="COMMAND")
    subs: dict[str, argparse.ArgumentParser] = {}

    p = subs["run"] = sub.add_parser("run", help="run the monitor (the daemon)")
    _add_common(p)
    p.add_argument("--source", help="auto, picamera, a camera index, a video file, a URL, "
                                    "or an image folder")
    p.add_argument("--log-dir", help="folder for the JSON-lines event log")
    p.add_argument("--max-frames", type=int, help="stop after N frames")
    p.add_argument("--fast", action="store_true", help="process video files as fast as "
                                                       "possible instead of in real time")
    p.add_argument("--loop", action="store_true", help="loop a video file")
    p.add_argument("--mock-gpio", action="store_true", help="drive LEDs on mock pins "
                                                            "(no GPIO hardware needed)")
    p.add_argument("--web", action="store_true", help="serve the web page (live view, the "
                   "room's mood, photos, the model); its address is printed")
    p.set_defaults(func=cmd_run)

    p = subs["classify"] = sub.add_parser("classify", help="faces and emotions in still images")
    _add_common(p)
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--annotate", type=Path, metavar="DIR",
                   help="write copies with boxes and labels to DIR (never the inputs' folder)")
    p.set_defaults(func=cmd_classify)

    p = subs["check"] = sub.add_parser("check", help="check camera, model, GPIO and log folder")
    _add_common(p)
    p.add_argument("--source", help="the source to check (default: the configured one)")
    p.add_argument("--no-camera", action="store_true", help="skip opening the source")
    p.set_defaults(func=cmd_check)

    p = subs["report"] = sub.add_parser("report", help="one day's mood as a self-contained "
                                                       "HTML file")
    p.add_argument("log", nargs="?", type=Path, help="the event log (default: the configured one)")
    p.add_argument("--date", required=True, help="the day, YYYY-MM-DD (the device's local time)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="where to write the HTML (an existing file is refused)")
    p.add_argument("--config", type=Path, help="TOML config file (for the log's location)")
    p.set_defaults(func=cmd_report)

    p = subs["config"] = sub.add_parser("config", help="print the config reference, or "
                                                       "validate a file")
    p.add_argument("--validate", type=Path, metavar="FILE")
    p.add_argument("--get", nargs="+", metavar="SECTION.KEY",
                   help="print each key's value, one a line, as the program reads it (the "
                        "file's, else the default; true/false for switches), e.g. web.bind")
    p.add_argument("--config", type=Path, help="the config file for --get (default: "
                   "$CONFIGURATION_DIRECTORY/config.toml if present, else built-in defaults)")
    p.set_defaults(func=cmd_config)

    p = subs["tail"] = sub.add_parser("tail", help="follow the event log as readable lines",
                                      description=tail.DESCRIPTION)
    tail.add_arguments(p)
    p.set_defaults(func=cmd_tail)

    p = subs["fleet"] = sub.add_parser(
        "fleet", help="every monitor on an MQTT broker: a live table (or --json)")
    from .mqtt.fleet import add_arguments
    add_arguments(p)
    p.set_defaults(func=cmd_fleet)

    # Its options are bench/pipeline.py's own (`emotion-edge bench --help` shows them).
    p = subs["bench"] = sub.add_parser("bench", add_help=False,
                                       help="pipeline benchmark (emotion-edge bench --help)")
    p.set_defaults(func=cmd_bench)
    return parser, subs


def parse(argv: list[str]) -> argparse.Namespace:
    """Global options, then a command with its options and arguments in any order."""
    parser, subs = build_parser()
    i = next((k for k, a in enumerate(argv) if not a.startswith("-")), len(argv))
    top, unknown = _global_options().parse_known_args(argv[:i])
    if i == len(argv) or argv[i] not in subs or unknown:
        return parser.parse_args(argv)           # help, or the error that names the commands
    cmd, rest = argv[i], argv[i + 1:]
    if cmd == "bench":
        args = argparse.Namespace(rest=rest, func=cmd_bench)
    else:
        args = subs[cmd].parse_intermixed_args(rest)
    args.cmd, args.verbose, args.debug = cmd, top.verbose, top.debug
    return args


def main(argv: list[str] | None = None) -> int:
    for stream in (sys.stdout, sys.stderr):   # file names of any bytes print as \xNN
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")
    args = parse(list(sys.argv[1:] if argv is None else argv))
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except EmotionEdgeError as exc:   # what the user must fix: one line, exit 2
        print(f"emotion-edge {args.cmd}: {one_line(exc)}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as exc:      # a file the command needed: say which, and why
        print(f"emotion-edge {args.cmd}: {describe(exc)}", file=sys.stderr)
        return 2
    except Exception as exc:          # anything else is a bug: exit 1
        if args.debug:
            raise
        print(f"emotion-edge {args.cmd}: internal error ({type(exc).__name__}: "
              f"{one_line(exc)}); this is a bug: run again with --debug for the traceback",
              file=sys.stderr)
        return 1
