"""How a registry's answers become errors, and how errors name what was asked for.

- **Errors** are translated here: callers see only the RegistryError family, one line,
  naming registry, repository and the object requested (:attr:`Target.label`). A
  distribution error body (``{"errors": [{"code", "message"}]}``) gives the detail;
  any other body gives a short excerpt.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from dhi_offline.encoding import loads_json
from dhi_offline.errors import (
    DhiError,
    MalformedEvidenceError,
    RegistryAuthError,
    RegistryError,
    RegistryNotFoundError,
)
from dhi_offline.net.http import error_excerpt, one_line
from dhi_offline.oci.reference import validate_registry, validate_repository

__all__ = ["Target", "error_codes", "status_error"]


@dataclass(frozen=True)
class Target:
    """A repository on a registry, with the text naming it in messages."""

    registry: str
    repository: str

    def __post_init__(self) -> None:
        validate_registry(self.registry)
        validate_repository(self.repository)

    @property
    def label(self) -> str:
        """``registry HOST repository NAME``: how messages name the target."""
        return f"registry {self.registry} repository {self.repository}"


def error_codes(body: bytes) -> set[str]:
    """The ``code`` of every error in a distribution error body (empty if it is not one)."""
    try:
        obj: Any = loads_json(body, what="error body")
    except MalformedEvidenceError:
        return set()
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if not isinstance(errors, list):
        return set()
    return {e["code"] for e in errors if isinstance(e, dict) and isinstance(e.get("code"), str)}


def status_error(response: httpx.Response, what: str) -> DhiError:
    """Turn a non-success response into a one-line RegistryError subclass."""
    status = response.status_code
    body = error_excerpt(response)
    detail = _error_detail(body) if body else ""
    suffix = f"HTTP {status}" + (f" {detail}" if detail else "")
    if status == 401:
        return RegistryAuthError(f"{what}: authentication refused ({suffix})")
    if status == 403:
        return RegistryAuthError(f"{what}: access denied ({suffix})")
    if status == 404:
        return RegistryNotFoundError(f"{what}: not found ({suffix})")
    if status == 429:
        return RegistryError(f"{what}: rate limited, retries exhausted ({suffix})")
    return RegistryError(f"{what}: registry answered {suffix}")


def _error_detail(body: bytes) -> str:
    """``CODE: message`` from a distribution error body, else a short body excerpt."""
    try:
        obj: Any = loads_json(body, what="error body")
    except MalformedEvidenceError:
        text = body.decode("utf-8", "replace")
        return one_line(text, 120) if text.isprintable() or text.strip() else ""
    errors = obj.get("errors") if isinstance(obj, dict) else None
    if isinstance(errors, list) and errors and isinstance(errors[0], dict):
        code = errors[0].get("code")
        message = errors[0].get("message")
        parts = [str(p) for p in (code, message) if p]
        return one_line(": ".join(parts), 160)
    return ""
