"""The LED sink on gpiozero's mock pins: each mode, the heartbeat, no needless pin writes, close()."""
from __future__ import annotations

import numpy as np
import pytest
from gpiozero import LED, Device
from gpiozero.exc import BadPinFactory
from gpiozero.pins.mock import MockFactory, MockPWMPin

from edge.events import FrameResult, TrackedFace
from edge.sinks.gpio import GpioConfig, GpioSink, GpioUnavailable

PINS = {"angry": 5, "disgust": 6, "fear": 16, "happy": 17, "sad": 22, "surprise": 23,
        "neutral": 24}
RGB = [12, 13, 19]
HEART = 27


class Clock:
    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t


def frame(emotions: list[str], dominant: str | None = None, index: int = 0) -> FrameResult:
    faces = [TrackedFace(i, (0, 0, 10, 10), e, 0.9, np.zeros(7, np.float32))
             for i, e in enumerate(emotions)]
    if dominant is None and emotions:
        dominant = max(set(emotions), key=emotions.count)
    return FrameResult(index, 0.0, faces, dominant)


@pytest.fixture
def factory():
    f = MockFactory(pin_class=MockPWMPin)
    yield f
    f.reset()


@pytest.fixture
def clock():
    return Clock()


def make(factory, clock, **kw) -> GpioSink:
    return GpioSink(GpioConfig(enabled=True, **kw), pin_factory=factory, clock=clock)


def states(factory, pins) -> dict:
    return {p: float(factory.pin(p).state) for p in pins}


def on_pins(factory) -> set[int]:
    return {p for p in PINS.values() if factory.pin(p).state}


def test_per_emotion_lights_each_emotion_in_view(factory, clock):
    sink = make(factory, clock, mode="per-emotion")
    assert on_pins(factory) == set() and sink.lit == set()
    sink.update(frame(["happy", "sad", "happy"]))
    assert sink.lit == {"happy", "sad"}
    assert on_pins(factory) == {17, 22}
    sink.update(frame(["neutral"]))
    assert sink.lit == {"neutral"} and on_pins(factory) == {24}
    sink.update(frame(["neutral", "fear"]))
    assert on_pins(factory) == {24, 16}
    sink.update(frame([]))
    assert sink.lit == set() and on_pins(factory) == set()
    sink.close()


def test_dominant_lights_only_the_rooms_emotion(factory, clock):
    sink = make(factory, clock, mode="dominant")
    sink.update(frame(["happy", "sad", "sad"], dominant="sad"))
    assert sink.lit == {"sad"} and on_pins(factory) == {22}
    sink.update(frame(["happy", "sad"], dominant="happy"))
    assert sink.lit == {"happy"} and on_pins(factory) == {17}
    sink.update(frame([], dominant=None))
    assert sink.lit == set() and on_pins(factory) == set()
    sink.close()


def test_rgb_shows_the_dominant_colour(factory, clock):
    sink = make(factory, clock, mode="rgb")
    colours = sink.config.colours
    sink.update(frame(["happy"]))
    assert sink.lit == {"happy"}
    assert list(states(factory, RGB).values()) == pytest.approx(colours["happy"])
    sink.update(frame(["sad", "sad", "happy"]))
    assert list(states(factory, RGB).values()) == pytest.approx(colours["sad"])
    sink.update(frame([]))
    assert sink.lit == set() and list(states(factory, RGB).values()) == [0, 0, 0]
    sink.close()


def test_heartbeat_toggles_on_elapsed_time_only(factory, clock):
    sink = make(factory, clock, heartbeat_period=1.0)
    heart = factory.pin(HEART)
    seen = []
    for step in range(9):               # 0.0, 0.25, ... 2.0 s
        sink.update(frame(["happy"]))
        seen.append(bool(heart.state))
        assert sink.heartbeat_on == seen[-1]
        clock.t += 0.25
    # on for half a period, off for half a period
    assert seen == [True, True, False, False, True, True, False, False, True]
    frozen = heart.state
    clock.t += 10                        # no frames: the heartbeat stops changing
    assert heart.state == frozen
    sink.close()


def test_pins_written_only_when_the_state_changes(factory, clock, monkeypatch):
    sink = make(factory, clock, mode="per-emotion")
    writes = {p: 0 for p in [*PINS.values(), HEART]}
    for p in writes:
        pin = factory.pin(p)
        real = pin._set_state

        def counted(value, _real=real, _p=p):
            writes[_p] += 1
            _real(value)
        monkeypatch.setattr(pin, "_set_state", counted)
    for _ in range(100):                 # 100 frames within one heartbeat half-period
        sink.update(frame(["happy", "sad"]))
    assert writes[17] == 1 and writes[22] == 1 and writes[HEART] == 1
    assert sum(writes.values()) == 3
    sink.update(frame(["sad", "happy"]))  # same emotions, other order: nothing to do
    assert sum(writes.values()) == 3
    sink.update(frame(["sad"]))
    assert writes[17] == 2 and sum(writes.values()) == 4
    sink.close()


def test_active_low_wiring_inverts_the_pins(factory, clock):
    sink = make(factory, clock, active_high=False, heartbeat_pin=-1)
    sink.update(frame(["happy"]))
    assert not factory.pin(17).state and factory.pin(22).state   # lit = pulled low
    sink.close()


def test_close_turns_off_and_releases_the_pins(factory, clock):
    sink = make(factory, clock)
    sink.update(frame(["happy", "angry"]))
    assert on_pins(factory) == {17, 5}
    assert not sink.closed
    sink.close()
    assert sink.closed and on_pins(factory) == set() and sink.lit == set()
    assert all(factory.pin(p).function == "input" for p in [*PINS.values(), HEART])
    again = [LED(p, pin_factory=factory) for p in [*PINS.values(), HEART]]  # no GPIOPinInUse
    for led in again:
        led.close()
    sink.close()                          # twice is fine


def test_no_gpio_gives_a_friendly_one_line_error(monkeypatch):
    def no_factory():
        raise BadPinFactory("Unable to load any default pin factory!")
    monkeypatch.setattr(Device, "pin_factory", None)
    monkeypatch.setattr(Device, "_default_pin_factory", staticmethod(no_factory))
    with pytest.raises(GpioUnavailable) as err:
        GpioSink(GpioConfig(enabled=True))
    msg = str(err.value)
    assert msg.startswith("no GPIO on this machine") and 'gpio.pin_factory = "mock"' in msg
    assert "\n" not in msg


def test_mock_pin_factory_by_name():
    sink = GpioSink(GpioConfig(enabled=True, mode="rgb", pin_factory="mock"))
    sink.update(frame(["surprise"]))
    assert sink.lit == {"surprise"}
    sink.close()


@pytest.mark.parametrize("kw, field", [
    ({"mode": "disco"}, "mode"),
    ({"pins": {"happy": 17, "sad": 17}}, "pins.sad"),
    ({"pins": {"happy": 40}}, "pins.happy"),
    ({"heartbeat_pin": 17}, "heartbeat_pin"),
    ({"rgb_pins": [1, 2]}, "rgb_pins"),
    ({"colours": {"happy": [1.0, 2.0, 0.0]}}, "colours.happy"),
    ({"pin_factory": "gpio"}, "pin_factory"),
    ({"heartbeat_period": 0}, "heartbeat_period"),
])
def test_config_errors_name_the_field(kw, field):
    with pytest.raises(ValueError, match=rf"^{field}"):
        GpioConfig(**kw)


def test_config_minus_one_disables_heartbeat_and_rgb_mode_may_reuse_emotion_pins():
    assert GpioConfig(heartbeat_pin=-1).heartbeat_pin is None
    GpioConfig(mode="rgb", rgb_pins=[17, 22, 23])   # the per-emotion pins are unused in rgb mode
