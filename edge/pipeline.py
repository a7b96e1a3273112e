"""The frame loop: source -> detector -> classifier -> tracker -> sinks.

One ``Monitor`` owns the stages and runs them in order on each frame. Stages can be passed
in (tests put a flaky source in front of a real video); otherwise they are built from the
configuration. Stopping (SIGTERM, SIGINT, ``max_frames``, end of a file) always flushes the
log and ends every track with a ``face_left`` and a last summary.

The source's state is data: an outage is a ``source_down`` / ``source_up`` pair in the log;
while it lasts, summaries keep their interval (no face-time, ``no_video_s``) and tracks end
once the source has been gone longer than the tracker's own limit (``max_missed_s``).
"""
from __future__ import annotations

import dataclasses
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from . import __version__
from .classifier import FaceClassifier
from .config import Config
from .detectors import create_detector
from .detectors.base import FaceDetector
from .events import Event, FrameResult, TrackedFace
from .sinks import SECTIONS as SINK_SECTIONS, make_sink
from .sinks.faces import FaceCropSink
from .sinks.base import Sink
from .sources import NO_FRAME, CaptureThread, FrameSource, ResilientSource, create_source
from .summary import Summary
from .tracker import Tracker

log = logging.getLogger(__name__)

STAGES = ("capture", "detect", "classify", "track", "sinks")


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


def build_sinks(cfg: Config) -> list[Sink]:
    """Every output the config turns on, each a sink: the sink sections' ``enabled`` flags,
    and ``[monitor] save_faces`` for face crops."""
    sinks = [make_sink(section, getattr(cfg, section)) for section in SINK_SECTIONS
             if getattr(cfg, section).enabled]
    if cfg.monitor.save_faces:
        sinks.append(FaceCropSink(cfg.monitor.faces_dir or Path(cfg.log.dir) / "faces",
                                  cfg.classifier.margin))
    return sinks


class Monitor:
    def __init__(self, cfg: Config, *, source: FrameSource | None = None,
                 detector: FaceDetector | None = None, classifier: FaceClassifier | None = None,
                 sinks: list[Sink] | None = None, notifier=None, profile: bool = False):
        self.cfg = cfg
        # Model and detector first: a bad model must fail before a camera is opened.
        self.classifier = classifier or FaceClassifier(cfg.classifier)
        self.detector = detector or create_detector(cfg.detector)
        self._micro_model = None
        if cfg.micro.enabled:
            from .micro.model import FlowModel
            self._micro_model = FlowModel(cfg.micro.model_path(), threads=cfg.micro.threads)
        # Never the sample clip here: only the CLI may choose it, for a person at a terminal.
        self.source = ResilientSource(source or create_source(cfg.source, demo=False))
        self.capture: CaptureThread | None = None   # started by run() when read_ahead > 0
        self.labels = self.classifier.labels
        self.tracker = Tracker(cfg.tracker, self.labels)
        self.summary = Summary(self.labels, cfg.monitor.summary_interval)
        self.sinks = sinks if sinks is not None else build_sinks(cfg)
        self.notifier = notifier or NullNotifier()
        self.profile = profile
        self.micro = None
        self.stats = RunStats()
        self._stop_reason: str | None = None
        self._last_time: float | None = None
        self._next_classifier: FaceClassifier | None = None  # set by switch_model()
        self._fps = RateMeter()
        self._ready = False                  # READY=1 sent
        self.capture_stuck = False           # the capture thread would not stop

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

    # --- what sinks may ask of a running monitor (sinks.base.Pipeline) --------------------
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
        cfg = dataclasses.replace(self.cfg.classifier, model=str(path))
        self._next_classifier = FaceClassifier(cfg)

    # --- the loop ----------------------------------------------------------------------------
    def run(self) -> RunStats:
        st = self.stats
        st.started = time.monotonic()
        self.source.open()        # a misconfigured source fails here; one not up yet waits
        src = self.source.source
        frames = self.source
        detect_every = self.cfg.tracker.detect_every
        max_frames = self.cfg.monitor.max_frames
        gray: np.ndarray | None = None
        clock = time.perf_counter
        try:   # from here on every exit goes through _shutdown (threads stopped, log flushed)
            if self.cfg.source.read_ahead:
                frames = self.capture = CaptureThread(self.source, self.cfg.source.read_ahead)
                self.capture.start()
            if self._micro_model is not None:
                from .micro import MicroStage
                self.micro = MicroStage(self.cfg.micro, fps=src.fps or self.cfg.source.fps,
                                        model=self._micro_model)
            for s in self.sinks:
                s.start(self)
            self._emit([Event("started", time.time(), extra={
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
                image, now = frame.image, frame.time
                self._last_time = now
                detecting = frame.index % detect_every == 0
                if detecting or self.micro is not None:  # the consumers of the gray frame
                    if gray is None or gray.shape != image.shape[:2]:
                        gray = np.empty(image.shape[:2], np.uint8)
                    cv2.cvtColor(image, cv2.COLOR_BGR2GRAY, dst=gray)
                events: list[Event] = self._source_events() if self.source.has_events else []
                if detecting:
                    found, weak = self.detector.detect_tiers(image)
                    t2 = clock()
                    events += self.tracker.update([d.box for d in found], now,
                                                  [d.box for d in weak])
                    visible = self.tracker.visible()
                    # Faces below min_readable are counted, never read (the model is
                    # guessing there: bench/results/small_faces.md).
                    small = self.cfg.classifier.min_readable
                    readable = [t for t in visible if min(t.box[2], t.box[3]) >= small]
                    t3 = clock()
                    probs = self.classifier.classify(gray, [t.int_box() for t in readable])
                    t4 = clock()
                    events += self.tracker.observe(readable, probs, now)
                    events += self.tracker.unread([t for t in visible if t not in readable], now)
                else:
                    # Between detector runs the boxes are guesses: classify only fresh
                    # detections, and let tracks carry their emotion until the next run.
                    t2 = clock()
                    self.tracker.predict(now)
                    t3 = t4 = clock()
                shown = [t for t in self.tracker.tracks if t.announced]
                faces, unread = self.tracker.faces(shown), self.tracker.unread_faces(shown)
                if self.micro is not None:
                    events += self.micro.update(gray, faces, now)
                    for e in events:
                        if e.kind == "face_left":
                            self.micro.forget(e.track_id)
                t5 = clock()
                summary = self.summary.add(now, faces, unread)
                if summary is not None:
                    events.append(summary)
                view = image.view()
                view.flags.writeable = False      # sinks look; they copy what they keep
                result = FrameResult(frame.index, now, faces, dominant(faces, self.labels),
                                     events, view, unread)
                if events:
                    self._emit(events)
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
                    for name, dt in zip(STAGES, (t1 - t0, t2 - t1, t4 - t3, (t3 - t2) + (t5 - t4),
                                                 t6 - t5)):
                        st.stage_s[name].append(dt)
                if st.frames % 30 == 0:
                    self.notifier.status(f"{st.frames / (time.monotonic() - st.started):.1f} fps, "
                                         f"{len(faces)} face(s)")
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
            if e.kind == "source_up":
                self.summary.idle(e.time)
                if e.extra["gap_s"] > self._outage_limit_s():
                    events += self._end_tracks(e.time)
        return events

    def _end_tracks(self, now: float) -> list[Event]:
        left = self.tracker.close(now)
        if self.micro is not None:
            for e in left:
                self.micro.forget(e.track_id)
        return left

    def _while_down(self) -> None:
        """No frame: the source is down. Time still passes for summaries and tracks."""
        now = time.time()
        events = self._source_events()
        down_since = self.source.down_since
        if self.tracker.tracks and down_since is not None \
                and now - down_since > self._outage_limit_s():
            events += self._end_tracks(now)
        summary = self.summary.idle(now)
        if summary is not None:
            events.append(summary)
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
            self.summary.idle(now)
        events += self.tracker.close(now)
        last = self.summary.flush(now)
        if last is not None:
            events.append(last)
        src = self.source
        events.append(Event("stopped", now, extra={
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

    def _use_classifier(self) -> None:
        """Swap in the model ``switch_model`` loaded. New labels mean new tracks: the old
        ones end (``face_left``) and the summary so far is written under the old labels."""
        new, self._next_classifier = self._next_classifier, None
        now = time.time() if self.source.source.live or self._last_time is None \
            else self._last_time
        events: list[Event] = []
        if new.labels != self.labels:
            events += self.tracker.close(now)
            last = self.summary.flush(now)
            if last is not None:
                events.append(last)
            self.tracker = Tracker(self.cfg.tracker, new.labels)
            self.summary = Summary(new.labels, self.cfg.monitor.summary_interval)
        old, self.classifier, self.labels = self.classifier, new, new.labels
        self.cfg.classifier = new.cfg
        events.append(Event("model_changed", now, extra={
            "model": new.model.path.name, "previous": old.model.path.name,
            "labels": list(new.labels)}))
        log.info("model switched to %s", new.model.path)
        self._emit(events)


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


def dominant(faces: list[TrackedFace], labels: tuple[str, ...]) -> str | None:
    """The room's emotion now: the label with the largest summed smoothed probability."""
    if not faces:
        return None
    if len(faces) == 1:
        return faces[0].emotion
    return labels[int(np.sum([f.scores for f in faces], axis=0).argmax())]
