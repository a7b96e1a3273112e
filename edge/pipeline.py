"""The frame loop: source -> detector -> classifier -> tracker -> sinks.

``Monitor`` only loops: it takes a frame from the source, has ``analysis.Analyzer`` turn
it into a ``FrameResult`` and hands that to the sinks. The stages are built from the config
by ``stages.build`` (or passed in: tests put a flaky source in front of a real video).
Sinks see the monitor through ``MonitorHandle``: facts and requests, never its config.
Stopping (SIGTERM, SIGINT, ``max_frames``, end of a file) always flushes the log and ends
every track with a ``face_left`` and a last summary.

The source's state is data: an outage is a ``source_down`` / ``source_up`` pair in the log;
while it lasts, summaries keep their interval (no face-time, ``no_video_s``) and tracks end
once the source has been gone longer than the tracker's own limit (``max_missed_s``).
"""
from __future__ import annotations

import logging
import sys
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .eventlog import EventKind
from . import __version__
from .analysis import STAGES, Analyzer, dominant  # noqa: F401 (dominant: re-exported)
from .catalogue import ModelCatalogue
from .classifier import FaceClassifier
from .config import Config
from .detectors.base import FaceDetector
from .events import Event
from .sinks.base import Sink
from .sources import NO_FRAME, CaptureThread, FrameSource, ResilientSource
from .stages import build, build_sinks  # noqa: F401 (build_sinks: re-exported)


# Python hands its lock between threads every 5 ms by default. The frame loop waits on the
# threads beside it (capture, reading, the far pass), each of which takes the lock for a
# moment between native calls; at 0.5 ms the loop gets it back sooner: +5% fps on the
# 30-face 720p clip, with less CPU (bench/results/classroom.md, "Speed").
SWITCH_INTERVAL_S = 0.0005

log = logging.getLogger(__name__)


class NullNotifier:
    """Stands in for systemd's notifier when there is none."""

    def ready(self): ...
    def watchdog(self): ...
    def status(self, text: str): ...
    def stopping(self): ...


@dataclass
class RunStats:
    frames: int = 0
    events: int = 0
    started: float = 0.0                 # monotonic
    first_result_s: float | None = None  # start -> first processed frame
    elapsed_s: float = 0.0
    stage_s: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    @property
    def fps(self) -> float:
        return self.frames / self.elapsed_s if self.elapsed_s else 0.0


class MonitorHandle:
    """What a running monitor offers its sinks (``sinks.base.Pipeline``): read-only facts,
    plus a model switch the frame loop carries out between frames."""

    def __init__(self, monitor: "Monitor"):
        self._monitor = monitor
        cfg = monitor.cfg
        self.colours: dict[str, str] = dict(cfg.gpio.colours)
        self.log_path = Path(cfg.log.dir) / cfg.log.file
        self.catalogue: ModelCatalogue = monitor.stages.catalogue
        self._detector_cfg = cfg.detector

    @property
    def labels(self) -> tuple[str, ...]:
        return self._monitor.labels

    @property
    def model_path(self) -> Path:
        return self._monitor.model_path

    def model_info(self) -> dict[str, Any]:
        return self._monitor.model_info()

    def health(self) -> dict[str, Any]:
        return self._monitor.health()

    def switch_model(self, path: Path) -> None:
        self._monitor.switch_model(path)

    def new_detector(self) -> FaceDetector:
        """A detector like the frame loop's, for work outside it (the page's photos)."""
        from .detectors import create_detector
        return create_detector(self._detector_cfg)


class Monitor:
    def __init__(self, cfg: Config, *, source: FrameSource | None = None,
                 detector: FaceDetector | None = None, classifier: FaceClassifier | None = None,
                 sinks: list[Sink] | None = None, notifier=None, profile: bool = False):
        self.cfg = cfg
        self.stages = build(cfg, source=source, detector=detector, classifier=classifier,
                            sinks=sinks)
        self.detector = self.stages.detector
        self.source = ResilientSource(self.stages.source)
        self.capture: CaptureThread | None = None   # started by run() when read_ahead > 0
        self.analyzer = Analyzer(self.detector, self.stages.classifier, cfg.tracker,
                                 cfg.monitor.summary_interval)
        self.sinks = self.stages.sinks
        self.notifier = notifier or NullNotifier()
        self.profile = profile
        self.stats = RunStats()
        self._stop_reason: str | None = None
        self._last_time: float | None = None
        self._next_classifier: FaceClassifier | None = None  # set by switch_model()
        self._fps = RateMeter()
        self._ready = False                  # READY=1 sent
        self.capture_stuck = False           # the capture thread would not stop

    # The stages' current parts (the classifier changes with a model switch).
    @property
    def classifier(self) -> FaceClassifier:
        return self.analyzer.classifier

    @property
    def labels(self) -> tuple[str, ...]:
        return self.analyzer.labels

    @property
    def tracker(self):
        return self.analyzer.tracker

    @property
    def summary(self):
        return self.analyzer.summary

    # --- control (safe to call from signal handlers) -------------------------------------
    def stop(self, reason: str = "stop requested") -> None:
        self._stop_reason = self._stop_reason or reason

    def reopen_logs(self) -> None:
        for s in self.sinks:
            if hasattr(s, "reopen"):
                s.reopen()

    @property
    def stopping(self) -> bool:
        return self._stop_reason is not None

    @property
    def stop_reason(self) -> str | None:
        return self._stop_reason

    # --- what sinks may ask of a running monitor (through MonitorHandle) ----------------
    @property
    def model_path(self) -> Path:
        return self.classifier.model.path

    def model_info(self) -> dict:
        m = self.classifier.model
        return {"file": m.path.name, "path": str(m.path), "labels": list(m.labels),
                "input_size": list(m.input_size), **m.sidecar.info}

    def health(self) -> dict:
        src, st = self.source, self.stats
        return {"fps": round(self._fps.rate(), 1), "frames": st.frames,
                "uptime_s": round(time.monotonic() - st.started, 1) if st.started else 0.0,
                "source": {"name": src.source.name, "live": src.source.live,
                           "state": getattr(src, "state", "live"),
                           "down_since": getattr(src, "down_since", None)},
                "bad_frames": src.bad_frames, "source_failures": src.failures,
                "dropped_frames": self.capture.dropped if self.capture else 0,
                "events": st.events,
                "outputs": {s.name: h for s in self.sinks if (h := s.health())}}

    def switch_model(self, path: Path) -> None:
        """Load ``path`` here (the caller's thread; a bad model raises ``ModelError`` and
        nothing changes) and hand it to the frame loop, which swaps at its next frame."""
        self._next_classifier = self.stages.catalogue.classifier(path)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> RunStats:
        st = self.stats
        st.started = time.monotonic()
        switch = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        try:
            return self._run(st)
        finally:
            sys.setswitchinterval(switch)

    def _run(self, st: RunStats) -> RunStats:
        self.source.open()        # a misconfigured source fails here; one not up yet waits
        frames = self.source
        max_frames = self.cfg.monitor.max_frames
        clock = time.perf_counter
        try:   # from here on every exit goes through _shutdown (threads stopped, log flushed)
            if self.cfg.source.read_ahead:
                frames = self.capture = CaptureThread(self.source, self.cfg.source.read_ahead)
                self.capture.start()
            self.analyzer.face_stages = self.stages.start_face_stages(
                self.cfg, self.source.source.fps)
            handle = MonitorHandle(self)
            for s in self.sinks:
                s.start(handle)
            self._emit([Event(EventKind.STARTED, time.time(), extra={
                "version": __version__, "source": self.source.name,
                "detector": self.detector.name, "model": self.classifier.model.path.name,
                "labels": list(self.labels)})])
            while not self.stopping:
                t0 = clock()
                if self._next_classifier is not None:
                    self._use_classifier()
                frame = frames.next(lambda: self.stopping, self.notifier.watchdog)
                if frame is None:
                    self.stop("end of stream" if not self.stopping else self._stop_reason)
                    break
                if frame is NO_FRAME:
                    self._while_down()
                    continue
                t1 = clock()
                self._last_time = frame.time
                result = self.analyzer.step(
                    frame, self._source_events() if self.source.has_events else [])
                t5 = clock()
                if result.events:
                    self._emit(result.events)
                for s in self.sinks:
                    s.update(result)
                t6 = clock()

                st.frames += 1
                self._fps.tick(t6)
                if st.first_result_s is None:
                    st.first_result_s = time.monotonic() - st.started
                    if not self._ready:
                        self._ready = True
                        self.notifier.ready()
                self.notifier.watchdog()
                if self.profile:
                    tm = self.analyzer.timings
                    for name, dt in zip(STAGES, (t1 - t0, tm["detect"], tm["classify"],
                                                 tm["track"], t6 - t5)):
                        st.stage_s[name].append(dt)
                if st.frames % 30 == 0:
                    self.notifier.status(f"{st.frames / (time.monotonic() - st.started):.1f} fps, "
                                         f"{len(result.faces)} face(s)")
                if max_frames and st.frames >= max_frames:
                    self.stop("max_frames reached")
        finally:
            self._shutdown()
        return st

    # --- the source's state ------------------------------------------------------------------
    def _outage_limit_s(self) -> float:
        """How long the source may be gone before its tracks end: the tracker's own limit."""
        return self.cfg.tracker.max_missed_s

    def _source_events(self) -> list[Event]:
        """source_down / source_up, with what an outage means for the tracks and the
        summary: the gap is no-video time, and tracks do not outlive a long one."""
        events = self.source.take_events()
        for e in events:
            if e.kind == EventKind.SOURCE_UP:
                events += self.analyzer.idle(e.time)
                if e.extra["gap_s"] > self._outage_limit_s():
                    events += self.analyzer.end_tracks(e.time)
        return events

    def _while_down(self) -> None:
        """No frame: the source is down. Time still passes for summaries and tracks."""
        now = time.time()
        events = self._source_events()
        down_since = self.source.down_since
        if self.tracker.tracks and down_since is not None \
                and now - down_since > self._outage_limit_s():
            events += self.analyzer.end_tracks(now)
        events += self.analyzer.idle(now)
        if events:
            self._emit(events)
        if not self._ready:
            # Up and waiting is a started service: systemd must not time the start out.
            self._ready = True
            self.notifier.ready()
        self.notifier.status(f"source {self.source.state}: {self.source.reason}")

    def _emit(self, events: list[Event]) -> None:
        self.stats.events += len(events)
        for s in self.sinks:
            s.handle(events)

    def _shutdown(self) -> None:
        self.notifier.stopping()
        release_source = True
        if self.capture is not None:
            try:
                self.capture.close()
            except TimeoutError as exc:   # never close a device another thread is inside
                log.error("%s", exc)
                release_source = False
                self.capture_stuck = True
        st = self.stats
        st.elapsed_s = time.monotonic() - st.started
        # A video file's events follow its own timeline; end them on it too.
        live = self.source.source.live or self._last_time is None
        now = time.time() if live else self._last_time
        events = self._source_events()
        if self.source.state != "live":
            events += self.analyzer.idle(now)
        events += self.analyzer.finish(now)
        src = self.source
        events.append(Event(EventKind.STOPPED, now, extra={
            "reason": self._stop_reason or "error", "frames": st.frames,
            "fps": round(st.fps, 1), "bad_frames": src.bad_frames,
            "source_failures": src.failures,
            "dropped_frames": self.capture.dropped if self.capture else 0}))
        try:
            self._emit(events)
        finally:
            for s in self.sinks:
                try:
                    s.close()
                except Exception as exc:  # one broken sink must not keep others from closing
                    log.error("closing %s failed: %s", s.name, exc)
            if release_source:
                self.source.close()
            self.detector.close()
            self.analyzer.close()

    def _use_classifier(self) -> None:
        """Swap in the model ``switch_model`` loaded (between frames)."""
        new, self._next_classifier = self._next_classifier, None
        now = time.time() if self.source.source.live or self._last_time is None \
            else self._last_time
        self._emit(self.analyzer.use_classifier(new, now))
        log.info("model switched to %s", new.model.path)


class RateMeter:
    """Frames per second over the last few seconds (the run's mean hides a stall)."""

    def __init__(self, window_s: float = 5.0):
        self.window_s = window_s
        self._ticks: deque[float] = deque()

    def tick(self, t: float) -> None:
        self._ticks.append(t)
        while self._ticks and t - self._ticks[0] > self.window_s:
            self._ticks.popleft()

    def rate(self) -> float:
        ticks = self._ticks
        if len(ticks) < 2:
            return 0.0
        span = ticks[-1] - ticks[0]
        return (len(ticks) - 1) / span if span > 0 else 0.0
