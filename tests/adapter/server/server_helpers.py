"""Helpers of the server tests: a live uvicorn server on a free port, database URLs, assertions."""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import httpx
import uvicorn
from pg_support import fresh_pg_url

from adapter.server.app import create_app
from adapter.server.settings import Settings
from adapter.store import Store

REPO = Path(__file__).resolve().parents[3]
WRITE_TOKEN = "test-write-token"
READ_TOKEN = "test-read-token"
JSON = "application/fhir+json"
XML = "application/fhir+xml"


def db_url(backend: str, directory: Path) -> str:
    if backend == "sqlite":
        return f"sqlite:///{directory}/server-{uuid.uuid4().hex[:8]}.sqlite3"
    return fresh_pg_url("t2f_srv")


class LiveServer:
    """uvicorn serving ``app`` in a thread, on a socket bound before start (no port race)."""

    def __init__(self, app: Any) -> None:
        # proto IPPROTO_TCP, or asyncio does not set TCP_NODELAY on accepted connections (40 ms per request)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def start(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.sock.close()


@dataclass
class Running:
    server: LiveServer
    store: Store
    backend: str
    settings: Settings

    @property
    def url(self) -> str:
        return self.server.url

    def base(self, release: str = "R4") -> str:
        return f"{self.server.url}/fhir/{release}"

    def client(self, **options: Any) -> httpx.Client:
        return _client(self.server.url, **options)


def _client(url: str, **options: Any) -> httpx.Client:
    return httpx.Client(base_url=url, timeout=60, **options)


def start(store: Store, backend: str, **settings: Any) -> Running:
    configured = Settings(**settings)
    server = LiveServer(create_app(configured, store)).start()
    return Running(server, store, backend, configured)


@contextmanager
def serving(settings: Settings) -> Iterator[httpx.Client]:
    """The app opening its own store from ``settings.db`` (as ``trial2fhir serve`` does), live, and a client of it."""
    server = LiveServer(create_app(settings)).start()
    try:
        with _client(server.url) as client:
            yield client
    finally:
        server.stop()


def auth(token: str = WRITE_TOKEN) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_outcome(response: httpx.Response, status: int, *, contains: str | None = None) -> dict[str, Any]:
    """The response is an error with an OperationOutcome body (JSON) and no stack trace."""
    assert response.status_code == status, response.text[:500]
    body = response.json()
    assert body["resourceType"] == "OperationOutcome", body
    assert body["issue"] and all(i["severity"] in ("fatal", "error", "warning", "information") for i in body["issue"])
    text = response.text
    assert "Traceback" not in text and 'File "' not in text
    if contains is not None:
        assert contains.lower() in text.lower(), text
    return body


class ScopedTokens:
    """A stand-in for a JWT authenticator plug-in: tokens map to SMART scopes."""

    TOKENS: ClassVar[dict[str, frozenset[str]]] = {
        "org-writer": frozenset({"system/Organization.write", "system/*.read"}),
        "v2-reader": frozenset({"system/*.rs"}),
    }

    def authenticate(self, token: str) -> Any:
        from adapter.server.auth import Principal

        scopes = self.TOKENS.get(token)
        return Principal(f"client:{token}", scopes) if scopes is not None else None

    def capability_security(self) -> dict[str, Any]:
        return {
            "service": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                            "code": "SMART-on-FHIR",
                        }
                    ]
                }
            ]
        }


def scoped_authenticator(settings: Any) -> ScopedTokens:
    return ScopedTokens()
