"""Where built-in connectors may send: the destinations the server's configuration names, never the diagram.

A diagram's HTTP or FHIR connector writes a URL; it runs only when that URL lies under the base URL of a
configured destination (CAREPATH_CONNECTOR_DESTINATIONS, docs/connectors.md): same scheme, host and port, and
a path below the base's path, with no user info and no `..` segment (percent-encoded or not). The deploy
refuses a URL no destination covers, and every call checks again before it is sent (a destination removed
since the deploy: an incident).
Credentials are never in the diagram: a destination names the environment variable holding its token.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

FHIR_DESTINATION = "fhir"  # the destination the FHIR connector sends to


@dataclass(frozen=True)
class Destination:
    name: str
    base_url: str
    bearer_token_env: str | None = None  # the environment variable with its bearer token (read at send time)
    headers: dict[str, str] = field(default_factory=dict)  # sent with every call (no secrets: they are logged)


class OutsideDestinations(ValueError):
    """The URL lies under no configured destination; the message says why."""


def destination_for(url: str, destinations: dict[str, Destination]) -> Destination:
    """The configured destination whose base URL covers `url` (the longest base wins); raises
    OutsideDestinations naming the setting."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise OutsideDestinations(f"'{url[:200]}' is not a URL") from None
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise OutsideDestinations(f"'{url[:200]}' is not an http(s) URL with a host")
    segments = unquote(parts.path).replace("\\", "/").split("/")  # as a server may decode them
    if "@" in parts.netloc or ".." in segments:
        raise OutsideDestinations(f"'{url[:200]}' carries user info or a '..' segment")
    covering = [d for d in destinations.values() if _covers(d.base_url, parts.scheme, parts.hostname, port,
                                                              parts.path)]
    if not covering:
        known = ", ".join(f"{d.name} ({d.base_url})" for d in destinations.values()) or "none is configured"
        raise OutsideDestinations(f"'{url[:200]}' is under no destination of CAREPATH_CONNECTOR_DESTINATIONS "
                                  f"(configured: {known})")
    return max(covering, key=lambda d: len(d.base_url))


def _covers(base_url: str, scheme: str, host: str, port: int | None, path: str) -> bool:
    base = urlsplit(base_url)
    if (base.scheme, base.hostname, _port(base.scheme, base.port)) != (scheme, host.lower(), _port(scheme, port)):
        return False
    prefix = base.path.rstrip("/")
    return path == prefix or path.startswith(prefix + "/") or not prefix


def _port(scheme: str, port: int | None) -> int:
    return port if port is not None else (443 if scheme == "https" else 80)


def parse_destinations(raw: dict[str, object]) -> dict[str, Destination]:
    """Destinations from their settings' JSON: {"name": {"base_url": ..., "bearer_token_env": ..., "headers":
    {...}}}; raises ValueError naming what is wrong."""
    found: dict[str, Destination] = {}
    for name, entry in raw.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("base_url"), str):
            raise ValueError(f"destination '{name}' needs a base_url")
        base = urlsplit(entry["base_url"])
        if base.scheme not in {"http", "https"} or not base.hostname or base.query or base.fragment:
            raise ValueError(f"destination '{name}': base_url must be an http(s) URL with a host, no query")
        token_env, headers = entry.get("bearer_token_env"), entry.get("headers") or {}
        if token_env is not None and not isinstance(token_env, str):
            raise ValueError(f"destination '{name}': bearer_token_env must be the name of an environment variable")
        if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
            raise ValueError(f"destination '{name}': headers must map names to texts")
        extra = set(entry) - {"base_url", "bearer_token_env", "headers"}
        if extra:
            raise ValueError(f"destination '{name}': unknown field(s) {', '.join(sorted(extra))}")
        found[name] = Destination(name, entry["base_url"], token_env, {str(k): v for k, v in headers.items()})
    return found
