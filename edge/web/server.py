"""Runs the web app with uvicorn in a thread of its own, on a socket bound up front (so a
port in use is one clear line at start, and port 0 gives a free port)."""
from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time

from ..sinks.base import Pipeline, SinkError
from .config import WebConfig
from .connections import ConnectionGuard, quiet_server_logs
from .hub import LiveHub

log = logging.getLogger(__name__)


class WebServer:
    def __init__(self, cfg: WebConfig, hub: LiveHub, pipeline: Pipeline):
        import uvicorn

        from .app import create_app

        self.cfg, self.hub = cfg, hub
        self.app = create_app(cfg, hub, pipeline)
        self.sock = self._listen(cfg.bind, cfg.port, min(64, cfg.max_connections))
        self.port = self.sock.getsockname()[1]
        ssl = cfg.ssl_context()            # a bad pair: one line now, not at the first request
        self.guard = ConnectionGuard(cfg.max_connections, cfg.request_timeout)
        quiet_server_logs()
        self._server = uvicorn.Server(uvicorn.Config(
            self.app, lifespan="off", log_level="warning", access_log=False,
            timeout_graceful_shutdown=1, ws="none", http=self.guard.protocol(),
            timeout_keep_alive=max(1, int(cfg.request_timeout)),
            # asyncio accepts up to `backlog` connections in a burst before the guard sees
            # one: with this, open + accepted stay within half the process's descriptors.
            backlog=self.guard.max_connections,
            ssl_context_factory=(lambda config, default: ssl) if ssl else None))
        self._thread = threading.Thread(target=self._run, name="web", daemon=True)

    @staticmethod
    def _listen(host: str, port: int, backlog: int) -> socket.socket:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
            sock.listen(backlog)
        except OSError as exc:
            sock.close()
            raise SinkError(f"[web] cannot listen on {host}:{port} ({exc.strerror or exc})") from None
        sock.set_inheritable(True)
        return sock

    def _run(self) -> None:
        async def serve():
            loop = asyncio.get_running_loop()
            loop.set_exception_handler(self.guard.on_loop_error)
            self.hub.attach(loop)
            await self._server.serve(sockets=[self.sock])
        try:
            asyncio.run(serve())
        except Exception as exc:   # the page is gone, the monitor goes on: say so once
            log.error("the web page stopped: %s", exc)

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        end = time.monotonic() + timeout
        while not self._server.started and self._thread.is_alive() and time.monotonic() < end:
            time.sleep(0.01)
        if not self._server.started:
            raise SinkError(f"[web] the page did not start on {self.cfg.bind}:{self.port}")

    def stop(self) -> None:
        self.hub.closed = True           # live streams end, so shutdown need not wait
        self._server.should_exit = True
        self._thread.join(5.0)
        self.sock.close()
