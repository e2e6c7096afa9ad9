"""`Content-Disposition` for files the API hands out (RFC 6266): an ASCII `filename` every client reads, and
`filename*` (RFC 8187, UTF-8 percent-encoded) with the real name when it is not plain ASCII. File names
come from uploads, so they are untrusted: no path, no control characters, no quotes."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import quote

from fastapi.responses import Response

from carepath.engine.application import CarePath
from carepath.engine.errors import NotFound
from carepath.engine.queries import pathway_source

# RFC 8187 attr-char, besides letters and digits: what `filename*` may carry unencoded.
ATTR_CHARS = "!#$&+-.^_`|~"
UNSAFE = re.compile(r'[\x00-\x1f\x7f"\\/;%]')


def content_disposition(disposition: str, filename: str, fallback: str = "download") -> str:
    name = UNSAFE.sub("", filename.replace("\\", "/").rsplit("/", 1)[-1]).strip().strip(".") or fallback
    letters = "".join(c for c in unicodedata.normalize("NFKD", name) if not unicodedata.combining(c))
    ascii_name = re.sub(r"[^A-Za-z0-9._ -]", "_", letters)
    header = f'{disposition}; filename="{ascii_name}"'
    if ascii_name != name:
        header += f"; filename*=UTF-8''{quote(name, safe=ATTR_CHARS)}"
    return header


def pathway_source_response(engine: CarePath, key: str, version: int, disposition: str) -> Response:
    """A version's stored diagram file, under its uploaded name (the API shows it inline, the web app offers
    it as a download)."""
    with engine.db.read() as session:
        found = pathway_source(session, key, version)
    if found is None:
        raise NotFound(f"pathway '{key}' has no version {version}")
    filename, content = found
    return Response(content, media_type="application/xml",
                    headers={"Content-Disposition": content_disposition(disposition, filename, f"{key}.bpmn")})
