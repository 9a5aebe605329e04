"""The HTTP endpoint of every service: ``/healthz``, ``/readyz`` and Prometheus ``/metrics``.

It is a FastAPI app served by uvicorn in a background thread; a service may add its own routes
(the admin API does) before starting it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import uvicorn
from fastapi import FastAPI, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from quorum_common.runtime.metrics import ServiceMetrics


def build_app(service: str, metrics: ServiceMetrics, ready: Callable[[], bool]) -> FastAPI:
    """A FastAPI app with the three operational routes of ``service``."""
    app = FastAPI(title=f"quorum-{service}", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        """Liveness: the process is up."""
        return {"status": "ok", "service": service}

    @app.get("/readyz")
    def readyz(response: Response) -> dict[str, str]:
        """Readiness: the service is connected and consuming."""
        if ready():
            return {"status": "ready", "service": service}
        response.status_code = 503
        return {"status": "starting", "service": service}

    @app.get("/metrics")
    def metrics_route() -> Response:
        """Prometheus text exposition of the service's metrics."""
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


class HttpServer:
    """Runs an app with uvicorn on a daemon thread."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
        self.thread = threading.Thread(target=self.server.run, name="http", daemon=True)

    def start(self, timeout_s: float = 10.0) -> int:
        """Start serving; return the bound port (useful with port 0)."""
        self.thread.start()
        deadline = time.monotonic() + timeout_s
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("HTTP server did not start")
            time.sleep(0.01)
        return self.server.servers[0].sockets[0].getsockname()[1]

    def stop(self) -> None:
        """Ask uvicorn to exit and wait for it."""
        self.server.should_exit = True
        self.thread.join(timeout=5)
