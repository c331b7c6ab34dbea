"""Database URLs as people read them: :func:`mask_url` hides the password.

Here, below the configuration, because every layer that prints a URL needs it (connections,
scratch databases, backups, env.py runs). SQLAlchemy is imported on first use only: the
settings import this module, and ``abmigrate --version`` must not pay for SQLAlchemy.
"""

from __future__ import annotations

import re

__all__ = ["mask_url"]

# Query parameters some drivers take a password from (psycopg, pymysql, mysqlclient).
_SECRET_QUERY_KEYS = frozenset({"password", "passwd", "pwd"})


def mask_url(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe to print, log and store), decoded
    for reading: ``?host=/tmp/pg`` rather than SQLAlchemy's ``?host=%2Ftmp%2Fpg``.

    Only the characters that would change how the URL parses stay percent-encoded (``@`` in
    a user name, ``&`` in a query value, ``%`` itself), so the text still reads back as the
    same URL, password aside; and spaces, as ``%20``, so that it stays one word (wrapped
    output never splits it, a shell takes it whole).
    """
    if _PLAIN_URL.match(url):
        # No password, nothing encoded, no query: it reads as written, and
        # SQLAlchemy (a third of a warm `status` on SQLite) is not imported to say so.
        return url
    return _mask_parsed(url)


# driver://user@host:port/database with nothing to hide or decode (no password, no query,
# a port without a leading 0).
_PLAIN_URL = re.compile(
    r"^[A-Za-z0-9_.+-]+://(?:(?:[A-Za-z0-9._-]+@)?[A-Za-z0-9._-]+(?::[1-9][0-9]*)?)?"
    r"(?:/[A-Za-z0-9._~/-]*)?$"
)


def _mask_parsed(url: str) -> str:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        masked = re.sub(r"://([^:/@]*):[^@]*@", r"://\1:***@", url)
        return re.sub(r"%(?!25)[0-9A-Fa-f]{2}", _unquote_match, masked)
    text = parsed.drivername + "://"
    if parsed.username is not None:
        text += _keep_encoded(parsed.username, ":@/?#")
        if parsed.password is not None:
            text += ":***"
        text += "@"
    if parsed.host is not None:
        text += f"[{parsed.host}]" if ":" in parsed.host else parsed.host
    if parsed.port is not None:
        text += f":{parsed.port}"
    if parsed.database is not None:
        text += "/" + _keep_encoded(parsed.database, "?#")
    pairs = [
        (key, value)
        for key, values in parsed.query.items()
        for value in ((values,) if isinstance(values, str) else values)
    ]
    if pairs:
        text += "?" + "&".join(
            f"{_keep_encoded(key, '&=#+')}="
            + ("***" if key.lower() in _SECRET_QUERY_KEYS else _keep_encoded(value, "&=#+"))
            for key, value in pairs
        )
    return text


def _keep_encoded(text: str, special: str) -> str:
    """``text`` as written, except ``%``, spaces and the characters in ``special``
    percent-encoded (they would read as URL syntax, or split the URL in two)."""
    return "".join(
        f"%{ord(char):02X}" if char in special or char in "% " else char for char in text
    )


def _unquote_match(match: re.Match[str]) -> str:
    from urllib.parse import unquote

    decoded = unquote(match.group())
    return decoded if decoded.isprintable() and decoded not in "&=#?@/:+ " else match.group()
