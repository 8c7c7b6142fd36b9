"""Bearer-token authentication and SMART-style scopes.

Reads are open unless ``open_reads`` is false; writes (and ``$ingest``) always need a token.
Tokens are checked by a chain of :class:`Authenticator` objects: the static tokens from the
settings, then, when ``TRIAL2FHIR_AUTHENTICATOR=module:factory`` is set, whatever that factory
returns (``factory(settings) -> Authenticator``).  That is where SMART Backend Services / OAuth2
JWT validation plugs in: verify the JWT against the issuer's JWKS and return a Principal with the
token's scopes.  Scopes follow SMART v1 (``system/ResearchStudy.read``, ``system/*.write``,
``system/*.*``) and v2 (``system/*.rs``, ``system/ResearchStudy.cruds``).
"""

from __future__ import annotations

import hmac
import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from adapter.server.settings import Settings

READ_ALL = "system/*.read"
WRITE_ALL = "system/*.write"


@dataclass(frozen=True, slots=True)
class Principal:
    subject: str
    scopes: frozenset[str]

    def allows(self, action: str, resource_type: str = "*") -> bool:
        """``action`` is ``read`` or ``write``; true when a scope grants it for the type."""
        for scope in self.scopes:
            context, _, rest = scope.partition("/")
            if context not in ("system", "user", "patient") or "." not in rest:
                continue
            scope_type, _, permission = rest.partition(".")
            if scope_type not in ("*", resource_type):
                continue
            if permission in ("*", action):
                return True
            letters = set(permission)
            if letters <= set("cruds") and letters:
                if action == "read" and letters & {"r", "s"}:
                    return True
                if action == "write" and letters & {"c", "u", "d"}:
                    return True
        return False


class Authenticator(Protocol):
    def authenticate(self, token: str) -> Principal | None:
        """The principal the token stands for, or None when this authenticator does not accept it."""
        ...


class StaticTokens:
    """Tokens from the settings: write tokens may read and write, read tokens may read."""

    def __init__(self, write_tokens: Sequence[str], read_tokens: Sequence[str]) -> None:
        self._write = [t.encode() for t in write_tokens if t]
        self._read = [t.encode() for t in read_tokens if t]

    @property
    def has_write(self) -> bool:
        return bool(self._write)

    @property
    def has_read(self) -> bool:
        return bool(self._read)

    def authenticate(self, token: str) -> Principal | None:
        candidate = token.encode()
        # compare_digest against every token, so timing does not tell which one (or whether any) matched
        write = any([hmac.compare_digest(candidate, t) for t in self._write])
        read = any([hmac.compare_digest(candidate, t) for t in self._read])
        if write:
            return Principal("static-write-token", frozenset({READ_ALL, WRITE_ALL}))
        if read:
            return Principal("static-read-token", frozenset({READ_ALL}))
        return None


class Authenticators:
    """The configured chain; ``configured`` is false when nothing could ever authenticate."""

    def __init__(self, members: Sequence[Authenticator]) -> None:
        self.members = list(members)

    @property
    def configured(self) -> bool:
        return any(not isinstance(m, StaticTokens) or m.has_write or m.has_read for m in self.members)

    @property
    def writes_possible(self) -> bool:
        return any(not isinstance(m, StaticTokens) or m.has_write for m in self.members)

    def authenticate(self, token: str) -> Principal | None:
        for member in self.members:
            principal = member.authenticate(token)
            if principal is not None:
                return principal
        return None

    def capability_security(self) -> dict[str, Any] | None:
        """Extra ``CapabilityStatement.rest.security`` content a plug-in declares (e.g. SMART service)."""
        for member in self.members:
            declare = getattr(member, "capability_security", None)
            if callable(declare):
                found = declare()
                if found:
                    return dict(found)
        return None


def load_authenticators(settings: Settings) -> Authenticators:
    members: list[Authenticator] = [StaticTokens(settings.write_tokens, settings.read_tokens)]
    if settings.authenticator:
        module_name, _, attribute = settings.authenticator.partition(":")
        if not attribute:
            raise ValueError(f"TRIAL2FHIR_AUTHENTICATOR must be module:factory, not {settings.authenticator!r}")
        factory = getattr(importlib.import_module(module_name), attribute)
        members.append(factory(settings))
    return Authenticators(members)


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer ...`` header (None when absent or another scheme)."""
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()
