"""The web origins a brand lets frame its embedded shows.

An origin here is exactly what a browser sends in ``Origin`` and what
``frame-ancestors`` matches: a scheme (http or https), a host and an
optional port, and nothing else. Paths, queries, credentials and wildcards
are refused, because a looser entry would let pages the brand never named
frame the buy sheet (clickjacking a checkout).
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from django.core.exceptions import ValidationError
from django.core.validators import validate_ipv46_address
from django.utils.translation import gettext as _

_HOST_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


def normalise_origin(text: str) -> str:
    """``text`` as a canonical origin ("https://shop.example:8443").

    Raises ValidationError naming the entry when it is not one.
    """
    raw = text.strip()
    error = ValidationError(
        _(
            "“%(origin)s” is not an origin: give a scheme and host, such as "
            "https://shop.example, with no path."
        ),
        code="invalid_origin",
        params={"origin": raw},
    )
    if "*" in raw or any(ch.isspace() for ch in raw):
        raise error
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError as exc:
        raise error from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise error
    if parts.username or parts.password or parts.query or parts.fragment:
        raise error
    if parts.path not in ("", "/") or raw.endswith("?") or raw.endswith("#"):
        raise error
    host = parts.hostname.lower()
    if not _valid_host(host):
        raise error
    shown_host = f"[{host}]" if ":" in host else host
    default_port = 443 if parts.scheme == "https" else 80
    if port is None or port == default_port:
        return f"{parts.scheme}://{shown_host}"
    return f"{parts.scheme}://{shown_host}:{port}"


def _valid_host(host: str) -> bool:
    try:
        validate_ipv46_address(host)
    except ValidationError:
        pass
    else:
        return True
    labels = host.split(".")
    return all(_HOST_LABEL.match(label) for label in labels)


def parse_origins(text: str) -> list[str]:
    """The origins in ``text`` (one a line), canonical and without repeats."""
    origins: list[str] = []
    errors: list[ValidationError] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            origin = normalise_origin(line)
        except ValidationError as exc:
            errors.append(exc)
            continue
        if origin not in origins:
            origins.append(origin)
    if errors:
        raise ValidationError(errors)
    return origins


def validate_embed_origins(value: object) -> None:
    """Model validator: a list of canonical origins."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError(_("Allowed origins must be a list."), code="invalid")
    for origin in value:
        if normalise_origin(origin) != origin:
            raise ValidationError(
                _(
                    "“%(origin)s” is not an origin: give a scheme and host, such as "
                    "https://shop.example, with no path."
                ),
                code="invalid_origin",
                params={"origin": origin},
            )
