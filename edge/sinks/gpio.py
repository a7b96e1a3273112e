"""LEDs on the Pi's header show what the monitor sees, built from gpiozero's ``LED`` and ``RGBLED``.

Modes:

* ``per-emotion``: one LED per emotion, lit while at least one face in view shows it.
* ``dominant``: the same LEDs, but only the room's dominant emotion is lit.
* ``rgb``: one RGB LED showing the dominant emotion's colour.

A heartbeat LED toggles every half ``heartbeat_period`` while frames flow, so a stuck daemon
shows as a frozen heartbeat. Pins change only when the state changes, never every frame.
See docs/wiring.md for the circuit.
"""
from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..errors import EmotionEdgeError
from ..events import Event, FrameResult
from .base import Sink
from ..settings import check

MODES = ("per-emotion", "rgb", "dominant")
FACTORIES = ("mock", "lgpio", "rpigpio", "pigpio", "native")
BCM_PINS = range(0, 28)   # GPIO0..GPIO27 on the 40-pin header


def _default_pins() -> dict[str, int]:
    # Chosen to keep I2C (2, 3), SPI (7-11) and UART (14, 15) free; see docs/wiring.md.
    return {"angry": 5, "disgust": 6, "fear": 16, "happy": 17, "sad": 22, "surprise": 23,
            "neutral": 24}


def _default_colours() -> dict[str, list[float]]:
    return {"angry": [1.0, 0.0, 0.0], "disgust": [0.3, 0.8, 0.0], "fear": [0.6, 0.0, 1.0],
            "happy": [1.0, 0.7, 0.0], "sad": [0.0, 0.0, 1.0], "surprise": [0.0, 1.0, 1.0],
            "neutral": [0.3, 0.3, 0.3]}


class GpioUnavailable(EmotionEdgeError, RuntimeError):
    """The GPIO pins cannot be driven here; the message says what to change."""


@dataclass
class GpioConfig:
    """The ``[gpio]`` section."""
    enabled: bool = field(default=False, metadata={"doc": "drive LEDs on the GPIO header"})
    mode: str = field(default="per-emotion", metadata={
        "doc": "per-emotion (an LED per emotion in view) | dominant (only the room's dominant "
               "emotion's LED) | rgb (one RGB LED in the dominant emotion's colour)",
        "choices": MODES})
    pins: dict[str, int] = field(default_factory=_default_pins, metadata={
        "doc": "emotion label -> BCM pin of its LED (per-emotion and dominant modes)"})
    rgb_pins: list[int] = field(default_factory=lambda: [12, 13, 19], metadata={
        "doc": "BCM pins of the RGB LED's red, green, blue legs (rgb mode)"})
    colours: dict[str, list[float]] = field(default_factory=_default_colours, metadata={
        "doc": "emotion label -> [r, g, b], each 0..1 (rgb mode)"})
    heartbeat_pin: int | None = field(default=27, metadata={
        "doc": "BCM pin of the heartbeat LED that blinks while frames flow (-1: none)"})
    heartbeat_period: float = field(default=1.0, metadata={
        "doc": "seconds for one heartbeat blink (on for half, off for half)",
        "range": "> 0", "unit": "seconds"})
    active_high: bool = field(default=True, metadata={
        "doc": "true: pin high lights the LED (LED to ground); false: common-anode wiring"})
    pin_factory: str | None = field(default=None, metadata={
        "doc": "gpiozero pin library: lgpio | rpigpio | pigpio | native; mock for a machine "
               "without GPIO; unset: gpiozero's default",
        "choices": FACTORIES})

    def __post_init__(self) -> None:
        check(self)   # the ranges and choices in the fields' metadata
        if self.heartbeat_pin is not None and self.heartbeat_pin < 0:
            self.heartbeat_pin = None          # TOML has no null: -1 means "no heartbeat"
        for label, pin in self.pins.items():
            _check_pin(f"pins.{label}", pin)
        if len(self.rgb_pins) != 3:
            raise ValueError(f"rgb_pins: needs exactly 3 pins [red, green, blue], got "
                             f"{list(self.rgb_pins)}")
        for i, pin in enumerate(self.rgb_pins):
            _check_pin(f"rgb_pins[{i}]", pin)
        for label, rgb in self.colours.items():
            if len(rgb) != 3 or not all(isinstance(c, (int, float)) and 0 <= c <= 1 for c in rgb):
                raise ValueError(f"colours.{label}: {rgb} must be [r, g, b] with each 0..1")
        if self.heartbeat_pin is not None:
            _check_pin("heartbeat_pin", self.heartbeat_pin)
        # Each pin drives one thing: two LEDs on one pin would fight over it.
        used: dict[int, str] = {}
        named = ([(f"rgb_pins[{i}]", p) for i, p in enumerate(self.rgb_pins)]
                 if self.mode == "rgb" else [(f"pins.{k}", p) for k, p in self.pins.items()])
        if self.heartbeat_pin is not None:
            named.append(("heartbeat_pin", self.heartbeat_pin))
        for name, pin in named:
            if pin in used:
                raise ValueError(f"{name}: GPIO{pin} is already used by {used[pin]}; "
                                 "each LED needs its own pin")
            used[pin] = name


def _check_pin(name: str, pin: Any) -> None:
    if isinstance(pin, bool) or not isinstance(pin, int) or pin not in BCM_PINS:
        raise ValueError(f"{name}: {pin!r} is not a BCM GPIO number 0..27")


def make_pin_factory(name: str | None):
    """The gpiozero pin factory for ``GpioConfig.pin_factory`` (None: gpiozero's default)."""
    if name is None:
        return None
    if name == "mock":
        from gpiozero.pins.mock import MockFactory, MockPWMPin
        return MockFactory(pin_class=MockPWMPin)   # PWM-capable, so RGB LEDs work too
    modules = {"lgpio": ("gpiozero.pins.lgpio", "LGPIOFactory"),
               "rpigpio": ("gpiozero.pins.rpigpio", "RPiGPIOFactory"),
               "pigpio": ("gpiozero.pins.pigpio", "PiGPIOFactory"),
               "native": ("gpiozero.pins.native", "NativeFactory")}
    module, cls = modules[name]
    try:
        return getattr(__import__(module, fromlist=[cls]), cls)()
    except Exception as exc:
        raise GpioUnavailable(f"gpio.pin_factory = \"{name}\" cannot be used here "
                              f"({exc}); on a Pi try \"lgpio\", elsewhere set "
                              "gpio.pin_factory = \"mock\" or gpio.enabled = false") from None


class GpioSink(Sink):
    """Drives the LEDs from the per-frame state; ``lit`` tells which emotions are shown."""

    name = "gpio"

    def __init__(self, config: GpioConfig | None = None, pin_factory=None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """pin_factory: a gpiozero Factory overriding ``config.pin_factory`` (for tests)."""
        from gpiozero import LED, RGBLED
        from gpiozero.exc import GPIOZeroError, PinFactoryFallback

        self.config = cfg = config or GpioConfig()
        self.factory = pin_factory if pin_factory is not None else make_pin_factory(cfg.pin_factory)
        self._clock = clock
        self._leds: dict[str, Any] = {}
        self._rgb = None
        self._heart = None
        self._lit: frozenset[str] = frozenset()
        self._beat_on = False
        self._beat_at = 0.0
        self._half = cfg.heartbeat_period / 2
        self._per_emotion = cfg.mode == "per-emotion"
        self._closed = False
        # On mock pins nobody can see an LED: say what it shows instead (only on change).
        from gpiozero.pins.mock import MockFactory
        self._narrate = isinstance(self.factory, MockFactory)
        try:
            with warnings.catch_warnings():
                # gpiozero warns about each pin library it could not load; our error says it all.
                warnings.simplefilter("ignore", PinFactoryFallback)
                kw = {"active_high": cfg.active_high, "pin_factory": self.factory}
                if cfg.mode == "rgb":
                    self._rgb = RGBLED(*cfg.rgb_pins, **kw)
                else:
                    for label, pin in cfg.pins.items():
                        self._leds[label] = LED(pin, **kw)
                if cfg.heartbeat_pin is not None:
                    self._heart = LED(cfg.heartbeat_pin, **kw)
        except (GPIOZeroError, OSError, RuntimeError) as exc:
            self.close()
            raise GpioUnavailable(_friendly(exc)) from None
        self._colours = {k: tuple(float(c) for c in v) for k, v in cfg.colours.items()}

    # -- state for tests and status ------------------------------------------------------

    @property
    def lit(self) -> set[str]:
        """The emotions shown right now (LEDs on, or the RGB LED's colour)."""
        return set(self._lit)

    @property
    def heartbeat_on(self) -> bool:
        return self._beat_on

    @property
    def closed(self) -> bool:
        """True once ``close()`` has released the pins (like gpiozero devices)."""
        return self._closed

    # -- the sink ------------------------------------------------------------------------

    def update(self, result: FrameResult) -> None:
        if self._heart is not None:
            now = self._clock()
            if now - self._beat_at >= self._half:
                self._beat_at = now
                self._beat_on = not self._beat_on
                self._heart.value = self._beat_on
        if self._per_emotion:
            if self._emotions_changed(result.faces):
                self._show(frozenset(f.emotion for f in result.faces if f.emotion in self._leds))
        else:
            dom = result.dominant
            shown = self._leds if self._rgb is None else self._colours
            if dom not in shown:
                dom = None
            if (dom is None and self._lit) or (dom is not None and (dom not in self._lit
                                                                   or len(self._lit) != 1)):
                self._show(frozenset() if dom is None else frozenset((dom,)))

    def _emotions_changed(self, faces: Sequence) -> bool:
        """Whether the set of shown emotions differs from ``lit``, without building a set."""
        leds, lit = self._leds, self._lit
        matched = 0
        for f in faces:
            if f.emotion in leds:
                if f.emotion not in lit:
                    return True
        for label in lit:
            for f in faces:
                if f.emotion == label:
                    matched += 1
                    break
        return matched != len(lit)

    def _show(self, labels: frozenset[str]) -> None:
        if self._rgb is not None:
            label = next(iter(labels), None)
            self._rgb.value = self._colours[label] if label else (0.0, 0.0, 0.0)
        else:
            for label in self._lit - labels:
                self._leds[label].off()
            for label in labels - self._lit:
                self._leds[label].on()
        self._lit = labels
        if self._narrate:
            if self._rgb is not None:
                label = next(iter(labels), None)
                shown = f"RGB {self._colours[label]} ({label})" if label else "RGB off"
            else:
                shown = ", ".join(f"{lab} (GPIO{self.config.pins[lab]})"
                                  for lab in sorted(labels)) or "all off"
            print(f"         LEDs (mock pins): {shown}", flush=True)

    def handle(self, events: Sequence[Event]) -> None:
        """Events change nothing here: the LEDs follow the per-frame state."""

    def close(self) -> None:
        """Turn everything off and give the pins back."""
        self._closed = True
        devices = [*self._leds.values(), self._rgb, self._heart]
        self._leds, self._rgb, self._heart = {}, None, None
        self._lit, self._beat_on = frozenset(), False
        for dev in devices:
            if dev is None:
                continue
            try:
                dev.off()
            except Exception:
                pass
            try:
                dev.close()
            except Exception:
                pass


def _friendly(exc: BaseException) -> str:
    from gpiozero.exc import BadPinFactory, GPIOPinInUse

    if isinstance(exc, BadPinFactory):
        return ("no GPIO on this machine: set gpio.pin_factory = \"mock\" or gpio.enabled = false "
                "(on a Pi: install python3-lgpio and add the user to the 'gpio' group)")
    if isinstance(exc, GPIOPinInUse):
        return f"a GPIO pin is already in use by another program or device ({exc})"
    if isinstance(exc, PermissionError):
        return (f"no permission to use GPIO ({exc}): add the service user to the 'gpio' group, "
                "or set gpio.enabled = false")
    return f"cannot set up the GPIO LEDs ({exc}); check the [gpio] section or set gpio.enabled = false"
