"""What every request handler shares: settings, the store, authentication, base URLs."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from fastapi import Request

from adapter.server.auth import Authenticators, Principal, bearer_token, load_authenticators
from adapter.server.fhir_io import FhirError
from adapter.server.settings import Settings
from adapter.store import Store, open_store
from adapter.store.params import RESOURCE_TYPES

log = logging.getLogger("trial2fhir.server")

RELEASES = {"R4": "4.0", "R5": "5.0"}
"""Path segment of each FHIR base -> the FHIR version stored under it."""
RELEASE_OF = {v: k for k, v in RELEASES.items()}
FULL_VERSION = {"4.0": "4.0.1", "5.0": "5.0.0"}


@dataclass
class ServerContext:
    settings: Settings
    store_override: Store | None = None
    authenticators: Authenticators = field(init=False)
    _store: Store | None = field(default=None, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)
    cache: dict[Any, Any] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        self.authenticators = load_authenticators(self.settings)
        self._store = self.store_override

    @property
    def store(self) -> Store:
        """The store, opened on first use (each server process opens its own connections)."""
        if self._store is None:
            with self._lock:
                if self._store is None:
                    self._store = open_store(
                        self.settings.db, pool_size=self.settings.db_pool_size, timeout_s=self.settings.db_timeout_s
                    )
        return self._store

    def close(self) -> None:
        if self._store is not None and self.store_override is None:
            self._store.close()
            self._store = None

    # --- URLs ---------------------------------------------------------------------------------

    def origin(self, request: Request) -> str:
        if self.settings.public_base_url:
            return self.settings.public_base_url.rstrip("/")
        return str(request.base_url).rstrip("/")

    def base_url(self, request: Request, fhir_version: str) -> str:
        return f"{self.origin(request)}/fhir/{RELEASE_OF[fhir_version]}"

    # --- access -------------------------------------------------------------------------------

    def principal(self, request: Request) -> Principal | None:
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            return None
        principal = self.authenticators.authenticate(token)
        if principal is None:
            raise FhirError(
                401,
                "the bearer token is not valid",
                "login",
                headers={"WWW-Authenticate": 'Bearer realm="trial2fhir", error="invalid_token"'},
            )
        return principal

    def require(self, request: Request, action: str, resource_types: tuple[str, ...] = ("*",)) -> Principal | None:
        """Check access for ``action`` (read | write) on each type; FhirError 401/403 otherwise."""
        if action == "read" and self.settings.open_reads:
            return None
        if action == "write" and not self.authenticators.writes_possible:
            raise FhirError(
                403,
                "this server accepts no writes: no write token is configured (set TRIAL2FHIR_WRITE_TOKENS)",
                "forbidden",
            )
        principal = self.principal(request)
        if principal is None:
            raise FhirError(
                401,
                f"{action} access needs an 'Authorization: Bearer <token>' header",
                "login",
                headers={"WWW-Authenticate": 'Bearer realm="trial2fhir"'},
            )
        for resource_type in resource_types:
            if not principal.allows(action, resource_type):
                raise FhirError(403, f"the token does not grant {action} access to {resource_type}", "forbidden")
        return principal


def get_context(request: Request) -> ServerContext:
    context: ServerContext = request.app.state.context
    return context


def fhir_version(release: str) -> str:
    """``R4`` -> ``4.0``; FhirError 404 for any other base."""
    version = RELEASES.get(release)
    if version is None:
        raise FhirError(404, f"no FHIR base /fhir/{release}: use /fhir/R4 or /fhir/R5", "not-found")
    return version


def check_type(resource_type: str) -> str:
    if resource_type not in RESOURCE_TYPES:
        raise FhirError(
            404,
            f"resource type {resource_type!r} is not served here; served: {', '.join(RESOURCE_TYPES)}",
            "not-supported",
        )
    return resource_type


def strict_handling(request: Request) -> bool:
    """``Prefer: handling=strict`` (default lenient)."""
    return _prefer(request).get("handling") == "strict"


def prefer_return(request: Request) -> str:
    """``Prefer: return=minimal | representation | OperationOutcome`` (default representation)."""
    return _prefer(request).get("return", "representation")


def _prefer(request: Request) -> dict[str, str]:
    out = {}
    for header in request.headers.getlist("prefer"):
        for item in header.split(","):
            key, _, value = item.partition("=")
            out[key.strip().lower()] = value.strip().strip('"')
    return out
