"""The clinical lead's pages (api/web/pathways.py): pathways with their versions and running episodes, the
upload form (errors and warnings at file, line and element, the preview with the elements at fault marked,
the new version, an identical upload), a version's page, its diagram and source, retiring, who may do what,
and what uploads may not do to the page (a script in a name, a hostile file name, a package too large)."""

from __future__ import annotations

import base64
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import pytest
from lxml import etree

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from tests.support import diagrams as d
from tests.support import laid_out
from tests.support.web import Browser, page, signed_in, text_of, web_user

SHIPPED = Path(__file__).resolve().parents[1] / "bpmn"
SVG = "{http://www.w3.org/2000/svg}"
BAD_GATEWAY = laid_out.chain(
    "triage", [("startEvent", "start", ""), ("exclusiveGateway", "risk", "Risk?"), ("userTask", "call", "Call"),
               ("endEvent", "end", "")],
    extra_flows=[("f_skip", "risk", "end")], task_attrs={"call": {"bogus": "1"}})


@pytest.fixture
def web(engine: CarePath, database_url: str) -> Iterator[Any]:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False)
    yield create_app(settings, engine)


def _lead(web: Any, engine: CarePath, name: str = "lena") -> Browser:
    web_user(engine, name, "clinical_lead", "care-coordinator")
    return signed_in(web, name)


def _upload(browser: Browser, *files: tuple[str, str, bytes]) -> Any:
    """Posts the upload form as a browser would: (field, file name, content) per file, with the CSRF token."""
    form = page(browser.get("/app/pathways/upload")).xpath('//form[@action="/app/pathways/upload"]')[0]
    token = {i.name: i.value for i in form.inputs if i.get("type") == "hidden"}
    return browser.client.post("/app/pathways/upload", data=token,
                               files=[(field, (name, content, "application/octet-stream"))
                                      for field, name, content in files])


def _preview_svg(response: Any) -> Any:
    src = page(response).xpath('//figure[contains(@class, "preview")]//img/@src')[0]
    assert src.startswith("data:image/svg+xml;base64,")
    return etree.fromstring(base64.b64decode(src.split(",", 1)[1]))


def _classes(svg: Any, element_id: str) -> str:
    return str(svg.xpath(f'//s:g[@data-element-id="{element_id}"]/@class', namespaces={"s": SVG[1:-1]})[0])


def test_the_list_shows_each_version_with_its_running_episodes(web: Any, engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", laid_out.follow_up().encode())])
    for n in range(2):
        start_instance(engine, SYSTEM, "follow-up", business_key=f"enc-{n}")
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", laid_out.follow_up(task_name="Phone patient").encode())])
    start_instance(engine, SYSTEM, "follow-up", business_key="enc-9")
    listing = page(_lead(web, engine).get("/app/pathways"))
    rows = {r.get("data-version"): r for r in listing.xpath('//table[contains(@class, "versions")]//tr[@data-version]')}
    assert text_of(rows["1"].xpath('td[@class="running"]')[0]) == "2"
    assert text_of(rows["2"].xpath('td[@class="running"]')[0]) == "1"
    assert "Current" in text_of(rows["2"]) and "Older" in text_of(rows["1"])
    assert rows["1"].xpath(".//a/@href") == ["/app/pathways/follow-up/versions/1"]
    assert listing.xpath('//a[@href="/app/pathways/upload"]')


def test_a_refused_upload_lists_every_error_and_warning_and_marks_the_element(web: Any, engine: CarePath) -> None:
    browser = _lead(web, engine)
    refused = _upload(browser, ("diagram", "triage.bpmn", BAD_GATEWAY.encode()))
    assert refused.status_code == 422
    html = page(refused)
    assert html.xpath('//div[@role="alert"]') and "not deployed" in text_of(html.xpath('//div[@role="alert"]')[0])
    errors = html.xpath('//tr[contains(@class, "severity-error")]')
    assert len(errors) == 1
    cells = {c.get("class"): text_of(c) for c in errors[0].xpath("td[@class]")}
    assert cells["file"] == "triage.bpmn" and cells["line"] == "5" and cells["element"].startswith("risk")
    assert "no default flow" in cells["message"] and "marked in the preview" in cells["element"]
    warnings = html.xpath('//tr[contains(@class, "severity-warning")]')
    assert warnings and "'bogus'" in text_of(warnings[0]) and text_of(warnings[0].xpath('td[@class="line"]')[0]) == "6"
    svg = _preview_svg(refused)
    assert "highlight-failed" in _classes(svg, "risk")
    assert "highlight" not in _classes(svg, "call")  # only what is at fault is marked
    assert browser.get("/app/pathways").text.count("triage") == 0  # nothing was stored


def test_an_upload_that_is_not_xml_is_refused_without_a_preview(web: Any, engine: CarePath) -> None:
    refused = _upload(_lead(web, engine), ("diagram", "broken.bpmn", b"<bpmn:definitions"))
    assert refused.status_code == 422
    html = page(refused)
    assert not html.xpath('//figure[contains(@class, "preview")]')
    assert "cannot be previewed" in text_of(html.xpath('//p[@class="no-preview"]')[0])
    assert text_of(html.xpath('//td[@class="file"]')[0]) == "broken.bpmn"


def test_an_upload_without_a_file_names_the_field(web: Any, engine: CarePath) -> None:
    refused = _upload(_lead(web, engine), ("diagram", "", b""))
    assert refused.status_code == 422
    field = page(refused).xpath('//input[@id="diagram"]')[0]
    assert field.get("aria-invalid") == "true" and "diagram-error" in field.get("aria-describedby")


def test_a_good_upload_leads_to_the_version_and_the_same_again_is_the_existing_one(web: Any,
                                                                                   engine: CarePath) -> None:
    browser = _lead(web, engine)
    xml = laid_out.follow_up().encode()
    deployed = _upload(browser, ("diagram", "fu.bpmn", xml))
    assert deployed.status_code == 201
    assert page(deployed).xpath('//ul[@class="deployed"]//a/@href') == ["/app/pathways/follow-up/versions/1"]
    again = _upload(browser, ("diagram", "fu.bpmn", xml))
    assert again.status_code == 200
    item = page(again).xpath('//ul[@class="deployed"]/li')[0]
    assert "identical to the existing version 1" in text_of(item)
    assert item.xpath(".//a/@href") == ["/app/pathways/follow-up/versions/1"]
    assert browser.get("/app/pathways/follow-up/versions/1").status_code == 200


def test_warnings_of_a_deployed_package_are_shown_and_the_unstaffed_lane_is_warned(web: Any,
                                                                                 engine: CarePath) -> None:
    browser = _lead(web, engine)
    xml = laid_out.chain("nightly", [("startEvent", "start", ""), ("userTask", "check", "Check"),
                                     ("endEvent", "end", "")], lane="Night Team")
    deployed = _upload(browser, ("diagram", "nightly.bpmn", xml.encode()))
    assert deployed.status_code == 201
    warnings = page(deployed).xpath('//tr[contains(@class, "severity-warning")]')
    assert any("'night-team'" in text_of(w) for w in warnings)
    lane = page(browser.get("/app/pathways/nightly")).xpath('//table[@class="lanes"]//tr[@data-lane="Night Team"]')[0]
    assert "night-team" in text_of(lane) and "wait unrouted" in text_of(lane)


def test_the_version_page_shows_diagram_lanes_forms_timers_measures_and_start_data(web: Any,
                                                                                 engine: CarePath) -> None:
    names = ("post-ed-follow-up.bpmn", "ed-visit-classification.dmn", "post-ed-follow-up.pathway.json")
    deploy_pathways(engine, SYSTEM, [SourceFile(n, (SHIPPED / n).read_bytes()) for n in names])
    browser = _lead(web, engine)
    response = browser.get("/app/pathways/post-ed-follow-up")
    assert response.status_code == 200
    html = page(response)
    base = "/app/pathways/post-ed-follow-up/versions/1"
    assert html.xpath("//figure//img/@src") == [f"{base}/diagram.svg"]
    assert html.xpath(f'//a[@href="{base}/source"]') and html.xpath(f'//a[@href="{base}/retire"]')
    assert html.xpath('//a[@href="/app/pathways/post-ed-follow-up/start"]')
    assert html.xpath('//table[@class="lanes"]//tr[@data-lane="Care Coordinator"]//code/text()') == ["care-coordinator"]
    call = html.xpath('//table[@class="tasks"]//tr[@data-element-id="call_patient"]')[0]
    assert "Call patient" in text_of(call) and call.xpath('.//ul[@class="fields"]/li')
    assert "1 business day" in text_of(call) and "P1BD" not in text_of(call)  # the code only in a title
    assert call.xpath('.//span[@title="P1BD"]')
    timers = html.xpath('//table[@class="timers"]//tr[@data-element-id]')
    assert timers and all(text_of(t.xpath("td")[0]).split()[0] in ("after", "at", "every") for t in timers)
    fires = [text_of(t.xpath("td")[0]) for t in timers]  # in words: no ISO 8601 code, no "every every"
    assert not [f for f in fires if re.search(r"\bR?\d*/?PT?\d", f) or "every every" in f], fires
    fum = html.xpath('//table[@class="measures"]//tr[@data-measure="fum-7"]')[0]
    assert "7 days after Date of the ED visit" in text_of(fum) and "P7D" not in text_of(fum)
    assert "Date of the ED visit" in text_of(html.xpath("//main")[0])
    assert text_of(html.xpath('//dd[@class="running"]')[0]) == "0"
    svg = browser.get(f"{base}/diagram.svg")
    assert svg.status_code == 200 and svg.headers["content-type"].startswith("image/svg+xml")
    assert "default-src 'none'" in svg.headers["content-security-policy"]
    assert etree.fromstring(svg.content).xpath('//s:g[@data-element-id="call_patient"]', namespaces={"s": SVG[1:-1]})
    source = browser.get(f"{base}/source")
    assert source.content == (SHIPPED / names[0]).read_bytes()
    assert source.headers["content-disposition"].startswith('attachment; filename="post-ed-follow-up.bpmn"')


def test_a_diagram_without_a_layout_is_said_so_instead_of_a_broken_picture(web: Any, engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("n.bpmn", d.linear_user_tasks("n", "Check").encode())])
    html = page(_lead(web, engine).get("/app/pathways/n/versions/1"))
    assert not html.xpath("//figure//img")
    assert "no layout" in text_of(html.xpath('//p[@class="no-preview"]')[0])
    assert html.xpath('//table[@class="tasks"]//tr[@data-element-id="task_0"]')


def test_retiring_asks_first_and_the_retired_version_says_so(web: Any, engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", laid_out.follow_up().encode())])
    browser = _lead(web, engine)
    base = "/app/pathways/follow-up/versions/1"
    assert page(browser.get(f"{base}/retire")).xpath(f'//form[@action="{base}/retire"]//button')
    assert page(browser.get(base)).xpath('//p[contains(@class, "retired-notice")]') == []
    retired = browser.submit(f"{base}/retire", f"{base}/retire")
    assert retired.status_code == 303 and retired.headers["location"] == base
    html = page(browser.get(base))
    assert "This version is retired" in text_of(html.xpath('//p[contains(@class, "retired-notice")]')[0])
    assert not html.xpath(f'//a[@href="{base}/retire"]')
    row = page(browser.get("/app/pathways")).xpath('//tr[@data-version="1"]')[0]
    assert "Retired" in text_of(row)


def test_a_retire_without_the_forms_token_changes_nothing(web: Any, engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", laid_out.follow_up().encode())])
    browser = _lead(web, engine)
    assert browser.client.post("/app/pathways/follow-up/versions/1/retire", data={}).status_code == 403
    assert "Current" in text_of(page(browser.get("/app/pathways")).xpath('//tr[@data-version="1"]')[0])


def test_an_auditor_is_not_offered_to_start_an_episode(web: Any, engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", laid_out.follow_up().encode())])
    web_user(engine, "ada", "auditor")
    browser = signed_in(web, "ada")
    version = page(browser.get("/app/pathways/follow-up/versions/1"))
    assert version.xpath("//h1") and not version.xpath('//a[@href="/app/pathways/follow-up/start"]')


def test_a_coordinator_reads_pathways_but_may_not_upload_or_retire(web: Any, engine: CarePath) -> None:
    deploy_pathways(engine, SYSTEM, [SourceFile("fu.bpmn", laid_out.follow_up().encode())])
    web_user(engine, "sam", "coordinator", "care-coordinator")
    browser = signed_in(web, "sam")
    listing = browser.get("/app/pathways")
    assert listing.status_code == 200 and not page(listing).xpath('//a[@href="/app/pathways/upload"]')
    version = page(browser.get("/app/pathways/follow-up/versions/1"))
    assert not version.xpath('//a[contains(@href, "/retire")]')
    assert version.xpath('//a[@href="/app/pathways/follow-up/start"]')  # coordinators start episodes
    for response in (browser.get("/app/pathways/upload"), browser.get("/app/pathways/follow-up/versions/1/retire")):
        assert response.status_code == 403 and "clinical_lead" in text_of(page(response).xpath("//main")[0])
    token = page(listing).xpath('//form[@action="/signout"]//input[@name="csrf_token"]/@value')[0]
    posted = browser.client.post("/app/pathways/upload", data={"csrf_token": token},
                                 files=[("diagram", ("fu2.bpmn", laid_out.follow_up("other").encode(), "text/xml"))])
    assert posted.status_code == 403 and "text/html" in posted.headers["content-type"]
    retire = browser.client.post("/app/pathways/follow-up/versions/1/retire", data={"csrf_token": token})
    assert retire.status_code == 403
    assert "other" not in browser.get("/app/pathways").text


def test_an_upload_over_the_limit_is_a_413_page(engine: CarePath, database_url: str) -> None:
    settings = Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False,
                        max_upload_bytes=4096)
    browser = _lead(create_app(settings, engine), engine)
    assert "4 KB" in text_of(page(browser.get("/app/pathways/upload")).xpath('//p[@id="size-limit"]')[0])
    big = laid_out.follow_up().encode() + b"<!--" + b"x" * 5000 + b"-->"
    too_large = _upload(browser, ("diagram", "fu.bpmn", big))
    assert too_large.status_code == 413 and too_large.headers["content-type"].startswith("text/html")
    assert "too large" in text_of(page(too_large).xpath('//p[@id="diagram-error"]')[0])  # beside the field
    huge = _upload(browser, ("diagram", "fu.bpmn", b"x" * 80_000))  # beyond the body limit itself
    assert huge.status_code == 413 and huge.headers["content-type"].startswith("text/html")


def test_a_script_in_an_element_name_shows_as_text(web: Any, engine: CarePath) -> None:
    name = '<script>alert("owned")</script>Call'
    browser = _lead(web, engine)
    deployed = _upload(browser, ("diagram", "fu.bpmn", laid_out.follow_up(task_name=name, name=name).encode()))
    assert deployed.status_code == 201
    html = page(browser.get("/app/pathways/follow-up/versions/1"))
    assert text_of(html.xpath('//tr[@data-element-id="call"]/th')[0]).startswith(name)
    assert name in text_of(html.xpath("//h1")[0])
    # Only the app's own script files (htmx, session.js): no script element from the element's name.
    assert not [s for s in html.xpath("//script") if not (s.get("src") or "").startswith("/static/")]
    svg = browser.get("/app/pathways/follow-up/versions/1/diagram.svg")
    drawn = etree.fromstring(svg.content)
    assert not drawn.xpath("//s:script | //script", namespaces={"s": SVG[1:-1]})
    assert "&lt;script&gt;" in svg.text
    hostile_gateway = BAD_GATEWAY.replace('name="Risk?"', f"name={quoteattr(name)}")
    refused = _upload(browser, ("diagram", "x.bpmn", hostile_gateway.encode()))
    assert refused.status_code == 422 and not _preview_svg(refused).xpath("//s:script", namespaces={"s": SVG[1:-1]})


def test_a_hostile_file_name_is_cut_to_its_name_and_shown_as_text(web: Any, engine: CarePath) -> None:
    hostile = '..\\..\\<img src=x onerror=alert(1)>.bpmn'
    browser = _lead(web, engine)
    refused = _upload(browser, ("diagram", hostile, BAD_GATEWAY.encode()))
    assert refused.status_code == 422
    html = page(refused)
    assert not html.xpath("//img[@onerror]")
    assert text_of(html.xpath('//td[@class="file"]')[0]) == "<img src=x onerror=alert(1)>.bpmn"
    assert _upload(browser, ("diagram", hostile, laid_out.follow_up().encode())).status_code == 201
    version = page(browser.get("/app/pathways/follow-up/versions/1"))
    assert not version.xpath("//img[@onerror]")
    assert "Download <img src=x onerror=alert(1)>.bpmn" in text_of(version.xpath('//a[@download]')[0])
    disposition = browser.get("/app/pathways/follow-up/versions/1/source").headers["content-disposition"]
    assert disposition.startswith("attachment;") and not set("<>\\/") & set(disposition.split("filename*")[0])
