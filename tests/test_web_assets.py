"""The web app's foundation through the ASGI app: the vendored htmx matches its record, static files are
served from the package with long caching, and pages carry the security headers (the JSON API and /docs
do not get the pages' policy). HTML is parsed, not string-matched."""

from __future__ import annotations

import json
import re
import tomllib
from fnmatch import fnmatch
from pathlib import Path

import lxml.html
import pytest

from carepath.api.web.assets import STATIC_DIR, TEMPLATES_DIR, file_sha256, static_url
from carepath.api.web.headers import CONTENT_SECURITY_POLICY

from .support.api import ApiClient

ROOT = Path(__file__).resolve().parents[1]


def _vendored() -> dict[str, dict[str, str]]:
    """The rows of static/VENDORED.md's table, by file name."""
    lines = [line for line in (STATIC_DIR / "VENDORED.md").read_text().splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(header, (cell.strip() for cell in line.strip("|").split("|")), strict=True))
            for line in lines[2:]]
    return {row["file"]: row for row in rows}


def test_every_vendored_file_matches_its_recorded_checksum_and_has_its_license() -> None:
    vendored = _vendored()
    assert "htmx.min.js" in vendored
    for name, row in vendored.items():
        assert file_sha256(STATIC_DIR / name) == row["sha256"], f"{name} differs from its record in VENDORED.md"
        license_file = re.search(r"`([^`]+)`", row["license"])
        assert license_file and (STATIC_DIR / license_file.group(1)).is_file(), name


def test_the_vendored_htmx_is_the_recorded_version() -> None:
    row = _vendored()["htmx.min.js"]
    assert row["version"].startswith("2.")
    assert f'version:"{row["version"]}"' in (STATIC_DIR / "htmx.min.js").read_text()


def test_static_files_and_templates_are_package_data() -> None:
    """`pip install` (not editable) ships every file the pages need."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "carepath.api.web"]
    for folder in (STATIC_DIR, TEMPLATES_DIR):
        for path in folder.iterdir():
            relative = path.relative_to(STATIC_DIR.parent).as_posix()
            assert any(fnmatch(relative, pattern) for pattern in patterns), relative


def _page_headers_present(response_headers: object, cache: str) -> None:
    headers = dict(response_headers)  # type: ignore[call-overload]
    assert headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert headers["referrer-policy"] == "same-origin"
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["x-frame-options"] == "DENY"
    assert headers["cache-control"] == cache


@pytest.mark.parametrize(("name", "content_type"), [("htmx.min.js", "javascript"), ("app.css", "text/css")])
def test_static_files_are_served_with_their_type_and_kept_for_a_year(api: ApiClient, name: str,
                                                                      content_type: str) -> None:
    response = api.client.get(static_url(name))
    assert response.status_code == 200
    assert response.content == (STATIC_DIR / name).read_bytes()
    assert content_type in response.headers["content-type"]
    _page_headers_present(response.headers, "public, max-age=31536000, immutable")


def test_a_static_url_changes_with_the_content() -> None:
    assert static_url("app.css") == f"/static/app.css?v={file_sha256(STATIC_DIR / 'app.css')[:12]}"
    with pytest.raises(ValueError):
        static_url("../app.py")


@pytest.mark.parametrize("path", ["/static/nothing.js", "/static/%2e%2e/app.py", "/static/..%2fapp.py"])
def test_a_missing_static_file_is_not_found_and_not_cached(api: ApiClient, path: str) -> None:
    response = api.client.get(path)
    assert response.status_code == 404
    assert response.headers["cache-control"] == "no-store"


def test_a_page_carries_the_security_headers_and_is_never_cached(api: ApiClient) -> None:
    response = api.client.get("/app/about")
    assert response.status_code == 200
    _page_headers_present(response.headers, "no-store")
    # An unknown page too: the policy holds for errors.
    _page_headers_present(api.client.get("/app/no-such-page").headers, "no-store")


def test_the_json_api_and_the_docs_keep_their_own_headers(api: ApiClient) -> None:
    for path in ("/healthz", "/api/pathways", "/openapi.json"):
        response = api.client.get(path)
        assert "x-frame-options" not in response.headers, path
        assert "content-security-policy" not in response.headers, path
    docs = api.client.get("/docs")
    assert docs.headers["content-security-policy"] != CONTENT_SECURITY_POLICY
    assert "x-frame-options" not in docs.headers


def test_the_base_template_is_ready_for_a_strict_policy(api: ApiClient) -> None:
    page = lxml.html.fromstring(api.client.get("/app/about").content)
    assert page.get("lang") == "en"
    config = json.loads(page.xpath("//meta[@name='htmx-config']/@content")[0])
    assert config["allowEval"] is False and config["allowScriptTags"] is False
    assert config["includeIndicatorStyles"] is False
    assert config["historyCacheSize"] == 0  # no copy of a page (patient data) in the browser's localStorage
    # No inline script, no inline style: every script has a src, no style element or attribute.
    scripts = [script.get("src") for script in page.iter("script")]
    assert scripts == [static_url("htmx.min.js"), static_url("session.js")]
    assert not page.xpath("//style | //*[@style]")
    assert page.xpath("//link[@rel='stylesheet']/@href") == [static_url("app.css"), static_url("session.css")]
    skip = page.xpath("//body/*[1]")[0]
    assert skip.tag == "a" and skip.get("href") == "#main"
    assert page.xpath("//main/@id") == ["main"]
    assert page.findtext(".//title") == "About · CarePath"


def test_the_about_page_names_the_care_settings_time_zone(api: ApiClient) -> None:
    page = lxml.html.fromstring(api.client.get("/app/about").content)
    facts = dict(zip(page.xpath("//dl/dt/text()"), (dd.text_content() for dd in page.xpath("//dl/dd")),
                     strict=True))
    assert facts["Version"] == "0.1.0"
    assert facts["Care setting's time zone"].startswith("America/New_York")
    assert page.xpath("//main//a/@href") == ["/docs", "/redoc"]
