"""What every page of the web app stands on: the templates, the static files served from the package
(`/static/...`: the vendored htmx, the style sheet) and their cache-busting URLs.

Nothing is loaded from a CDN and nothing is built with Node.js: the files in `static/` ship in the Python
package. A static URL carries a hash of the file's content (`/static/app.css?v=1a2b3c4d5e6f`), so the
browser may keep the file for a year (api/web/headers.py) and still gets a changed file on the next page.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.middleware.gzip import GZipMiddleware

from carepath.engine.labels import event_label, record_part_label, role_label

from .navigation import nav_items

STATIC_DIR = Path(__file__).parent / "static"
TEMPLATES_DIR = Path(__file__).parent / "templates"
STATIC_PREFIX = "/static"


def file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@cache
def static_url(name: str) -> str:
    """The URL of a file in static/, versioned by its content; an unknown name fails when the page renders."""
    path = STATIC_DIR / name
    if path.parent != STATIC_DIR or not path.is_file():
        raise ValueError(f"no static file '{name}'")
    return f"{STATIC_PREFIX}/{name}?v={file_sha256(path)[:12]}"


# Autoescaping is on for .html templates (Jinja2Templates' select_autoescape): whatever a user typed shows
# as text.
templates = Jinja2Templates(directory=TEMPLATES_DIR)
templates.env.globals["static_url"] = static_url
templates.env.globals["nav_items"] = nav_items
# The product's names in words, on every page (engine/labels.py holds the one table of each).
templates.env.filters["role_label"] = role_label
templates.env.filters["event_label"] = event_label
templates.env.filters["record_part_label"] = record_part_label


def mount_static(app: FastAPI) -> None:
    """The static files, gzip-compressed for browsers that accept it (htmx goes from 52 KB to about 17 KB on
    the wire). Only these: pages are not compressed, since a page holds a CSRF token beside text a user
    typed (compressing both together is what BREACH-style attacks measure)."""
    app.mount(STATIC_PREFIX, GZipMiddleware(StaticFiles(directory=STATIC_DIR), minimum_size=500), name="static")
