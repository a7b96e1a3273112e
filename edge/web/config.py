"""The ``[web]`` section: where the page listens, what it shows, who may see it.

It lives here, not beside the sink, so that the sink (``edge.sinks.web``), the server and
the app all import it from one place that imports none of them.
"""
from __future__ import annotations

import ipaddress
import os
import stat
from dataclasses import dataclass, field

from ..password_file import PasswordFileError, check_password, read_password_file
from ..sinks.base import SinkError
from .i18n import LANGUAGES
from ..settings import check

KIOSK_MODES = ("live", "room")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass
class WebConfig:
    """The ``[web]`` section."""
    enabled: bool = field(default=False, metadata={
        "doc": "serve the local web page (live view, the room's mood, photos, the model); "
               "emotion-edge run --web turns it on"})
    bind: str = field(default="127.0.0.1", metadata={
        "doc": "address to listen on: 127.0.0.1 is this device only (the kiosk's own "
               "browser); any other address needs a password"})
    port: int = field(default=8080, metadata={"doc": "TCP port (0: any free port)",
        "range": "0..65535"})
    show_video: bool = field(default=True, metadata={
        "doc": "send the camera picture to the page; false (privacy mode): boxes and "
               "labels on a plain background, no pixel of the camera leaves the pipeline"})
    max_fps: float = field(default=10.0, metadata={
        "doc": "most pictures (and face updates) a second sent to a viewer",
        "range": "(0, 60]"})
    max_width: int = field(default=640, metadata={
        "doc": "the live picture is downscaled to at most this many pixels wide",
        "range": "32..4096"})
    jpeg_quality: int = field(default=75, metadata={"doc": "JPEG quality of the live picture, 1..100",
        "range": "1..100"})
    password: str = field(default="", metadata={
        "doc": "password for the page (needed when bind is not a loopback address); "
               "prefer password_file"})
    password_file: str = field(default="", metadata={
        "doc": "file whose first line is the password, exactly (readable by the service "
               "only: a file every user may read is refused)"})
    tls_cert: str = field(default="", metadata={
        "doc": "certificate file (PEM) to serve the page over HTTPS, with tls_key; the "
               "sign-in cookie is then Secure. sudo ./install.sh --web-tls makes a "
               "self-signed pair"})
    tls_key: str = field(default="", metadata={"doc": "the certificate's private key (PEM)"})
    allowed_hosts: list[str] = field(default_factory=list, metadata={
        "doc": "host names the page answers to besides localhost, this device's own name "
               "(and name.local) and IP addresses, e.g. [\"mood.school.lan\"]; a request "
               "for any other name is refused (no DNS rebinding)"})
    max_connections: int = field(default=64, metadata={
        "doc": "most connections open at once; past it the one that has waited longest "
               "for its request is closed (or, if none, the new one)"})
    request_timeout: float = field(default=10.0, metadata={
        "doc": "seconds a connection may take to send a request's headers, or stay idle "
               "between requests, before it is closed"})
    max_upload_mb: float = field(default=10.0, metadata={
        "doc": "largest photo the page accepts for classification, in MB",
        "range": "(0, 100]"})
    models_dir: str = field(default="", metadata={
        "doc": "folder whose models the page offers to switch to; empty: the folder of "
               "the model in use"})
    kiosk: str = field(default="live", metadata={
        "doc": "what the public screen (/kiosk) shows: live (the picture with each face's "
               "box and emotion) | room (only the room's aggregates: no picture, no face; "
               "for schools and workplaces, if at all)",
        "choices": KIOSK_MODES})
    language: str = field(default="", metadata={
        "doc": "language of the page, the kiosk and the report: en | zh-CN; empty: the "
               "browser's preferred language (English when it prefers neither)"})

    def __post_init__(self) -> None:
        check(self)   # the ranges and choices in the fields' metadata
        if self.language and self.language not in LANGUAGES:
            raise ValueError(f"language: {self.language!r} is not one of {', '.join(LANGUAGES)} "
                             "(or empty: the browser's choice)")
        if self.enabled and not is_loopback(self.bind) and not (self.password or
                                                                 self.password_file):
            raise ValueError(f"bind: {self.bind} is reachable from the network; set "
                             "password_file (or password) first, or bind 127.0.0.1")
        if self.password:
            check_password(self.password, "password")
        if bool(self.tls_cert) != bool(self.tls_key):
            raise ValueError("tls_cert and tls_key: set both (HTTPS) or neither")
        for name in self.allowed_hosts:
            if not name or any(c in name for c in "/:@ ") or name != name.strip():
                raise ValueError(f"allowed_hosts: {name!r} is not a host name")
        if not 4 <= self.max_connections <= 10000:
            raise ValueError(f"max_connections: {self.max_connections} is outside 4..10000")
        if not 0.5 <= self.request_timeout <= 300:
            raise ValueError(f"request_timeout: {self.request_timeout} is outside 0.5..300")

    @property
    def tls(self) -> bool:
        return bool(self.tls_cert and self.tls_key)

    def ssl_context(self):
        """The HTTPS context from tls_cert and tls_key (None without TLS); a missing,
        unreadable, world-readable or mismatched pair is a one-line error."""
        if not self.tls:
            return None
        import ssl

        try:
            if os.stat(self.tls_key).st_mode & stat.S_IROTH:
                raise SinkError(f"[web] tls_key {self.tls_key}: every user on this device may "
                                f"read it; chmod 600 it, or 640 with the service's group")
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(self.tls_cert, self.tls_key)
        except OSError as exc:   # ssl.SSLError is one
            reason = getattr(exc, "reason", None) or exc.strerror or str(exc)
            raise SinkError(f"[web] tls_cert {self.tls_cert} / tls_key {self.tls_key}: cannot "
                            f"load them ({reason})") from None
        return ctx

    def read_password(self) -> str:
        """The page's password ("" when none is set); a password file that yields none
        is a one-line error, never an open page."""
        if self.password_file:
            try:
                return read_password_file(self.password_file, "[web] password_file")
            except PasswordFileError as exc:
                raise SinkError(str(exc)) from None
        return self.password
