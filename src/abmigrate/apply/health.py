"""The health check run after a migration: an HTTP URL that must answer 2xx in time, and/or
a SQL probe that must run without error (and, if it returns a value, a true one)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from abmigrate.db.database import scrub

if TYPE_CHECKING:
    from abmigrate.config.settings import Environment

__all__ = ["check_health"]


def _safe_url(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
    return urlunsplit(parts._replace(netloc=netloc))


def _http(url: str, timeout_s: float) -> dict[str, Any]:
    import urllib.error
    import urllib.request

    result: dict[str, Any] = {"kind": "http", "target": _safe_url(url), "ok": False}
    started = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            result["status"] = response.status
            result["ok"] = 200 <= response.status < 300
    except urllib.error.HTTPError as exc:
        result["status"] = exc.code
        result["error"] = f"HTTP {exc.code}"
    except Exception as exc:  # refused, timeout, DNS: all mean "not healthy"
        reason = getattr(exc, "reason", exc)
        result["error"] = f"{type(exc).__name__}: {reason}"
    result["elapsed_s"] = round(time.monotonic() - started, 3)
    return result


def _sql(environment: Environment, query: str) -> dict[str, Any]:
    from sqlalchemy import text

    from abmigrate.db.database import connect

    result: dict[str, Any] = {"kind": "sql", "target": query, "ok": False}
    started = time.monotonic()
    try:
        with connect(environment.url) as connection:
            row = connection.execute(text(query)).first()
            result["ok"] = row is None or bool(row[0])
            if not result["ok"]:
                result["error"] = f"the probe returned {row[0]!r}" if row else "no row"
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        result["error"] = scrub(first, environment.url)
    result["elapsed_s"] = round(time.monotonic() - started, 3)
    return result


def check_health(environment: Environment) -> dict[str, Any]:
    """``{"ok": bool, "checks": [...]}``; no configured check means ok with no checks."""
    policy = environment.policy
    checks = []
    if policy.health_url:
        checks.append(_http(policy.health_url, policy.health_timeout_ms / 1000))
    if policy.health_sql:
        checks.append(_sql(environment, policy.health_sql))
    return {"ok": all(check["ok"] for check in checks), "checks": checks}
