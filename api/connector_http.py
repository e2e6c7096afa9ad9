"""Sends the built-in connectors' HTTP and FHIR requests (engine/usecases/connector_calls.py) with httpx.

One request per attempt, with the call's timeout, never following a redirect (a redirect could lead outside the
configured destination). The destination's bearer token is read from the environment variable it names when the
request is sent, so it is in neither the diagram nor the database. Errors name the destination only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx

from carepath.engine.usecases.connector_calls import ConnectorRequest, ConnectorResponse

MAX_RESPONSE_BYTES = 1024 * 1024


class ConnectorUnreachable(Exception):
    """The request did not get an answer (a network error, a timeout, an answer too large)."""


class ConnectorHttp:
    def __init__(self, *, transport: httpx.BaseTransport | None = None,
                 environment: Mapping[str, str] | None = None) -> None:
        self.client = httpx.Client(follow_redirects=False, transport=transport,
                                   headers={"User-Agent": "CarePath connector"})
        self.environment = environment if environment is not None else os.environ

    def __call__(self, request: ConnectorRequest) -> ConnectorResponse:
        destination = request.destination
        headers = {**request.headers, **destination.headers}
        token = self.environment.get(destination.bearer_token_env) if destination.bearer_token_env else None
        if destination.bearer_token_env and not token:
            raise ConnectorUnreachable(f"the environment variable {destination.bearer_token_env} of destination "
                                       f"'{destination.name}' is not set")
        if token:
            headers["Authorization"] = f"Bearer {token}"
        try:
            with self.client.stream(request.method, request.url, content=request.body, headers=headers,
                                    params=request.params or None, timeout=request.timeout_s) as response:
                body = b""
                for chunk in response.iter_bytes():
                    body += chunk
                    if len(body) > MAX_RESPONSE_BYTES:
                        raise ConnectorUnreachable(f"destination '{destination.name}' answered more than "
                                                   f"{MAX_RESPONSE_BYTES} bytes")
        except httpx.HTTPError as exc:
            raise ConnectorUnreachable(f"{request.method} to destination '{destination.name}' failed "
                                       f"({type(exc).__name__})") from exc
        return ConnectorResponse(response.status_code, {k.lower(): v for k, v in response.headers.items()}, body)
