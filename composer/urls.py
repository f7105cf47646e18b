"""Credentials in URLs: find them, refuse them in addresses we are given, redact them in text.

A URL can carry a secret in two places: its user information (``http://user:pass@host``) and
its query (``?key=...``, ``?access_token=...``, a signed URL's ``signature``). Keys belong in
environment variables, so a base URL carrying one is refused wherever it comes from (flag,
environment, config file), and every URL printed or stored goes through :func:`redact_url`
or :func:`redact_text` first. What does not live here: where keys do come from (each backend,
``config.py``).
"""

from __future__ import annotations

import re
from urllib.parse import parse_qsl, urlsplit

#: Query parameter names that carry a credential: ``key``, ``api_key``, ``access_token``,
#: ``client_secret``, ``password``, a signed URL's ``signature`` / ``X-Goog-Signature`` /
#: ``X-Amz-Credential``... but not ``keyframe`` or ``monkey``.
SECRET_NAME = re.compile(
    r"(^|[_\-.])(api[_\-]?key|apikey|keys?|tokens?|secrets?|passwords?|passwd|credentials?|auth|sig|signature)($|[_\-.])",
    re.IGNORECASE,
)
# A URL inside free text: scheme, then anything up to white space or a quote.
_URL_IN_TEXT = re.compile(r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+")


def secret_parts(url: str) -> list[str]:
    """What in ``url`` is a credential, in words (empty: nothing); never the values."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    found = []
    if parts.username is not None or parts.password is not None:
        found.append("a user name or password before the host")
    names = sorted(
        {name for name, _ in parse_qsl(parts.query, keep_blank_values=True) if SECRET_NAME.search(name)}
    )
    found.extend(f"the query parameter {name!r}" for name in names)
    return found


def redact_url(url: str) -> str:
    """``url`` with its user information and the values of credential parameters as ``***``."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = parts.query
    if query:
        pieces = []
        for piece in query.split("&"):
            name, eq, _ = piece.partition("=")
            pieces.append(f"{name}=***" if eq and SECRET_NAME.search(name) else piece)
        query = "&".join(pieces)
    if netloc == parts.netloc and query == parts.query:
        return url
    return parts._replace(netloc=netloc, query=query).geturl()


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), text)
