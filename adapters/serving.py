"""Serving a simulator: a Starlette app under uvicorn on a real socket, in a daemon thread.

Every reference simulator in `adapters/` is a `SimulatorServer`: it builds its
Starlette app, hands it to `SimulatorServer.__init__` with the host and port,
and gets `start`, `stop`, `url` and the context manager from here, so the
hub's HTTP clients are exercised against a real server.

    class Destination(SimulatorServer):
        label, title = "dest", "destination"

        def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
            super().__init__(Starlette(routes=[...]), host=host, port=port)

    with Destination() as dest:               # 127.0.0.1, ephemeral port
        ...  # point the hub at dest.url
"""

from __future__ import annotations

import socket
import threading
from typing import Any, ClassVar, Self

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.responses import Response


class JSONResponse(Response):
    """A JSON answer rendered with orjson."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class _Server(uvicorn.Server):
    """A uvicorn server that tells the starting thread when it is accepting."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = threading.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()


class SimulatorServer:
    """A Starlette app served on `host:port` by uvicorn in a background thread.

    Args:
        app: what to serve.
        host: interface to listen on.
        port: 0 picks a free port at the first start; later starts reuse it.
    """

    label: ClassVar[str] = "simulator"  # thread name prefix
    title: ClassVar[str] = "simulator"  # in start-up errors
    backlog: ClassVar[int] = 256

    def __init__(self, app: Starlette, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host, self.port = host, port
        self._app = app
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL, e.g. `http://127.0.0.1:40123`; known once started."""
        if not self.port:
            raise RuntimeError(f"{type(self).__name__} has no port yet; call start() first")
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self, timeout: float = 5.0) -> Self:
        """Bind the port (SO_REUSEADDR) and serve in a background thread."""
        if self._server is not None:
            return self
        sock = socket.create_server((self.host, self.port), backlog=self.backlog)
        self.port = sock.getsockname()[1]
        # "auto" is uvicorn's own choice: httptools and uvloop when importable,
        # else h11 and asyncio.
        config = uvicorn.Config(
            self._app,
            http="auto",
            loop="auto",
            ws="none",
            lifespan="off",
            access_log=False,
            log_level="warning",
        )
        server = _Server(config)
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"{self.label}:{self.port}",
            daemon=True,
        )
        thread.start()
        if not server.ready.wait(timeout):
            server.should_exit = True
            sock.close()
            raise RuntimeError(f"{self.title} on port {self.port} did not start in {timeout} s")
        self._server, self._thread = server, thread
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving and close the socket; what the simulator recorded is kept."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None and thread is not None:
            server.should_exit = True
            thread.join(timeout)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def wait_for_interrupt() -> None:
    """Block until Ctrl-C, for a simulator run in the foreground; its server keeps serving."""
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
