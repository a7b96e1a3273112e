"""``emotion-edge tail [LOGFILE]``: follow the event log like ``tail -F``, readably.

Only the command: each record printed as a line, with a live summary (faces seen, each
emotion's share of face-time). Following across rotation, the record's schema and the line
format live in ``edge.eventlog``.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import TextIO

from .errors import describe, display
from .eventlog import (FollowStats, LiveSummary, LogError, check_logfile, follow, format_record,
                       parse_line)

# Where the log is when no LOGFILE is given: the Pi install, then a run from the repo.
DEFAULT_LOGS = (Path("/var/log/emotion-edge/events.jsonl"), Path("logs/events.jsonl"))


def default_logfile() -> Path:
    for p in DEFAULT_LOGS:
        if p.exists():
            return p
    return DEFAULT_LOGS[-1]


DESCRIPTION = ("Follow the emotion event log like tail -F, as readable lines with a live "
               "summary. Survives log rotation.")


def add_arguments(ap: argparse.ArgumentParser) -> None:
    """The options of ``emotion-edge tail`` (also ``python -m edge.tail``)."""
    ap.add_argument("logfile", nargs="?", type=Path,
                    help=f"the log (default: the configured one, else the first that exists "
                         f"of {', '.join(map(str, DEFAULT_LOGS))})")
    ap.add_argument("--from-start", action="store_true",
                    help="print the whole current file first, not only new lines")
    ap.add_argument("--json", action="store_true",
                    help="pass the JSON lines through unchanged (the summary goes to stderr)")
    ap.add_argument("-n", "--max-lines", type=int, metavar="N",
                    help="stop after N lines")
    ap.add_argument("--until-eof", action="store_true",
                    help="stop at the end of the log instead of waiting for more")
    ap.add_argument("--summary-every", type=float, default=10.0, metavar="S",
                    help="print the summary every S seconds while new lines arrive (0: only at exit)")
    ap.add_argument("--poll", type=float, default=0.25, metavar="S", help=argparse.SUPPRESS)


def main(argv: list[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    ap = argparse.ArgumentParser(prog="emotion-edge tail", description=DESCRIPTION)
    add_arguments(ap)
    args = ap.parse_intermixed_args(argv)
    try:
        return run(args, out, err)
    except (LogError, OSError) as exc:
        print(f"emotion-edge tail: {describe(exc)}", file=err or sys.stderr)
        return 2


def run(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """``emotion-edge tail`` with parsed ``args``; raises LogError for a log it cannot read."""
    out = out or sys.stdout
    err = err or sys.stderr
    if args.max_lines is not None and args.max_lines < 1:
        raise LogError("-n/--max-lines: must be at least 1")
    path = args.logfile or default_logfile()
    check_logfile(path)
    summary = LiveSummary()
    stats = FollowStats()
    info = err if args.json else out
    shown_at = [time.monotonic(), 0]   # when the summary was last shown, records at the time

    def show_summary(force: bool = False) -> None:
        if not force and (args.summary_every <= 0 or summary.records == shown_at[1]
                          or time.monotonic() - shown_at[0] < args.summary_every):
            return
        shown_at[0], shown_at[1] = time.monotonic(), summary.records
        print(summary.line(), file=info, flush=True)

    if not path.exists():
        print(f"waiting for {display(path)} to appear ...", file=err, flush=True)
    try:
        for line in follow(path, from_start=args.from_start, poll=args.poll,
                           stop_at_eof=args.until_eof, max_lines=args.max_lines,
                           on_idle=show_summary, stats=stats):
            rec = parse_line(line)
            if rec is None:
                summary.malformed += 1
                print(f"tail: skipped a malformed line: {line[:80]!r}", file=err, flush=True)
                continue
            summary.add(rec)
            print(line if args.json else format_record(rec), file=out, flush=True)
            show_summary()
    except KeyboardInterrupt:
        pass
    except BrokenPipeError:      # e.g. piped into head
        _quiet_stdout()
        return 0
    show_summary(force=True)
    return 0


def _quiet_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


if __name__ == "__main__":
    raise SystemExit(main())
