"""``emotion-edge``: run the monitor, classify images, tail the log, check the setup."""
from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path

from .classifier import ModelError
from .config import ConfigError, default_config_path, load, reference
from .detectors.errors import DetectorModelError
from .sinks.base import SinkError
from .sinks.gpio import GpioUnavailable
from .sources import SourceError


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", type=Path, help="TOML config file (default: "
                   "$CONFIGURATION_DIRECTORY/config.toml if present, else built-in defaults)")
    p.add_argument("--model", help="int8 .tflite emotion model (sidecar .json beside it)")
    p.add_argument("--detector", help="haar, blazeface-short or blazeface-full")


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

def cmd_run(args) -> int:
    from .notify import SystemdNotifier
    from .pipeline import Monitor

    cfg = _config(args)
    monitor = Monitor(cfg, notifier=SystemdNotifier())
    signal.signal(signal.SIGTERM, lambda *_: monitor.stop("SIGTERM"))
    signal.signal(signal.SIGINT, lambda *_: monitor.stop("SIGINT"))
    signal.signal(signal.SIGHUP, lambda *_: monitor.reopen_logs())
    st = monitor.run()
    first = f"{st.first_result_s:.2f} s" if st.first_result_s is not None else "none"
    print(f"stopped ({monitor.stop_reason}): {st.frames} frames in {st.elapsed_s:.1f} s "
          f"({st.fps:.1f} fps), first result after {first}", flush=True)
    return 0


# --- classify --------------------------------------------------------------------------------

def cmd_classify(args) -> int:
    import cv2

    from .classifier import FaceClassifier
    from .detectors import create_detector
    from .photo import annotate, classify_image
    from .sources.images import image_files

    cfg = _config(args)
    classifier = FaceClassifier(cfg.classifier)
    detector = create_detector(cfg.detector)
    if args.annotate:
        args.annotate.mkdir(parents=True, exist_ok=True)
    status = 0
    for path in image_files(args.images):
        image = cv2.imread(str(path), cv2.IMREAD_COLOR)
        if image is None:
            print(f"{path}: not a readable image", file=sys.stderr)
            status = 1
            continue
        faces = classify_image(image, detector, classifier)
        if args.json:
            print(json.dumps({"image": str(path), "faces": faces}))
        else:
            desc = ", ".join(f"{f['emotion']} {max(f['scores'].values()):.2f} at {f['box']}"
                             for f in faces) or "no faces"
            print(f"{path}: {desc}")
        if args.annotate:
            annotate(image, faces)
            cv2.imwrite(str(args.annotate / path.name), image)
    return status


# --- check -----------------------------------------------------------------------------------

def cmd_check(args) -> int:
    from .check import run_checks

    return run_checks(_config(args), camera=not args.no_camera)


def cmd_report(args) -> int:
    from .web.report import ReportError, write_report

    cfg = load(args.config or default_config_path())
    log = args.log or Path(cfg.log.dir) / cfg.log.file
    try:
        n = write_report(log, args.date, args.output, cfg.gpio.colours)
    except ReportError as exc:
        raise ConfigError(str(exc)) from None
    print(f"{args.output}: {n} summaries of {args.date}")
    return 0


def cmd_config(args) -> int:
    if args.validate:
        load(args.validate)
        print(f"{args.validate}: ok")
        return 0
    print(reference())
    return 0


def cmd_tail(args) -> int:
    from . import tail

    rest = list(args.rest)
    if not any(Path(a).exists() for a in rest):  # no log named: the configured one
        cfg = load(default_config_path())
        configured = Path(cfg.log.dir) / cfg.log.file
        if configured.exists():
            rest.append(str(configured))
    return tail.main(rest)


def cmd_fleet(args) -> int:
    from .mqtt.fleet import run

    return run(args)


def cmd_bench(args) -> int:
    import runpy
    bench = Path(__file__).resolve().parents[1] / "bench" / "pipeline.py"
    if not bench.exists():
        print("the pipeline benchmark ships with the source repository (bench/pipeline.py)",
              file=sys.stderr)
        return 2
    sys.argv = [str(bench), *args.rest]
    runpy.run_path(str(bench), run_name="__main__")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="emotion-edge", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="cmd", required=True)

    p = sub.add_parser("run", help="run the monitor (the daemon)")
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

    p = sub.add_parser("classify", help="faces and emotions in still images")
    _add_common(p)
    p.add_argument("images", nargs="+", help="image files or folders")
    p.add_argument("--json", action="store_true", help="one JSON object per image")
    p.add_argument("--annotate", type=Path, metavar="DIR",
                   help="write copies with boxes and labels to DIR")
    p.set_defaults(func=cmd_classify)

    p = sub.add_parser("check", help="check camera, model, GPIO and log folder")
    _add_common(p)
    p.add_argument("--source", help="the source to check (default: the configured one)")
    p.add_argument("--no-camera", action="store_true", help="skip opening the source")
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("report", help="one day's mood as a self-contained HTML file")
    p.add_argument("log", nargs="?", type=Path, help="the event log (default: the configured one)")
    p.add_argument("--date", required=True, help="the day, YYYY-MM-DD (the device's local time)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="FILE",
                   help="where to write the HTML (an existing file is refused)")
    p.add_argument("--config", type=Path, help="TOML config file (for the log's location)")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("config", help="print the config reference, or validate a file")
    p.add_argument("--validate", type=Path, metavar="FILE")
    p.set_defaults(func=cmd_config)

    p = sub.add_parser("tail", help="follow the event log as readable lines",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_tail)

    p = sub.add_parser("fleet", help="every monitor on an MQTT broker: a live table (or --json)")
    from .mqtt.fleet import add_arguments
    add_arguments(p)
    p.set_defaults(func=cmd_fleet)

    p = sub.add_parser("bench", help="pipeline benchmark (see bench/pipeline.py --help)",
                       add_help=False)
    p.add_argument("rest", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_bench)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    try:
        return args.func(args)
    except (ConfigError, ModelError, DetectorModelError, SourceError, GpioUnavailable,
            SinkError) as exc:
        print(f"emotion-edge {args.cmd}: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
