"""Secrets kept out of logs: credentials in a URL are masked before the URL is shown anywhere."""

from __future__ import annotations

from urllib.parse import urlsplit, urlunsplit


def redact_url(url: str) -> str:
    """`http://user:pass@host:8086/x` -> `http://user:***@host:8086/x`; userinfo without a password
    (which may be a token) is masked whole; other URLs unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    host = parts.netloc.rsplit("@", 1)[1]
    userinfo = f"{parts.username}:***" if parts.password is not None and parts.username else "***"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{host}"))


def scrub(text: object, url: str) -> str:
    """`text` (an error message) with `url` and the password in it masked."""
    shown = str(text).replace(url, redact_url(url))
    password = urlsplit(url).password
    return shown.replace(password, "***") if password else shown
