"""A task form field naming a resource directory service (`"format": "carepath-resource"`): the engine refuses
an id that names no active service at that field (API and web alike); the task page draws the field as a
text input with a directory search beside it (its need preset from the task's `domain`), the search's
results choose a service (htmx fragments), and the chosen service is shown under the field."""

from __future__ import annotations

from typing import Any

import pytest

from carepath.engine.application import CarePath
from tests.support.api import ApiClient
from tests.support.resource_pathway import deploy_and_start
from tests.support.web import Browser, page, signed_in, text_of, web_user

HTMX = {"HX-Request": "true"}


@pytest.fixture
def task_id(engine: CarePath) -> str:
    return deploy_and_start(engine)


@pytest.fixture
def browser(engine: CarePath, api: ApiClient) -> Browser:
    web_user(engine, "cara", "coordinator", "care-coordinator")
    return signed_in(api.client.app, "cara")


def _complete(api: ApiClient, user: str, task_id: str, service_id: Any) -> Any:
    return api.post(f"/api/tasks/{task_id}/complete", user, {"data": {"service_id": service_id}})


@pytest.mark.parametrize("service_id", ["fict-svc-nowhere", "fict-svc-closed", "x" * 500])
def test_an_id_naming_no_active_service_is_refused_at_its_field(api: ApiClient, task_id: str,
                                                                service_id: str) -> None:
    user = api.user("coordinator", "care-coordinator")
    refused = _complete(api, user, task_id, service_id)
    assert refused.status_code == 422, refused.text
    [problem] = refused.json()["errors"]
    assert problem["field"] == "service_id"
    assert "no active service in the resource directory has the id" in problem["message"]
    done = _complete(api, user, task_id, "fict-svc-food-pantry")
    assert done.status_code == 200, done.text
    assert done.json()["data"]["service_id"] == "fict-svc-food-pantry"


def test_the_field_is_a_text_input_with_a_directory_search_preset_to_the_tasks_need(
        browser: Browser, task_id: str) -> None:
    html = page(browser.get(f"/app/tasks/{task_id}"))
    [field] = html.xpath('//form[@id="task-form"]//input[@name="service_id"]')
    assert field.get("type") == "text" and field.get("id") == "field-service_id"
    [box] = html.xpath('//div[@id="field-service_id-search"]')
    assert box.get("hidden") is not None  # shown by the script; without it the input and the link serve
    assert box.xpath('.//select[@name="directory-domain"]/option[@selected]/@value') == ["food"]
    assert box.xpath('.//button/@hx-get') == ["/app/resources"]
    assert html.xpath('//a[@href="/app/resources?directory-domain=food"]')


def test_the_search_answers_services_each_chosen_for_the_field(browser: Browser, task_id: str) -> None:
    found = browser.client.get("/app/resources", headers=HTMX, params={
        "directory-domain": "food", "directory-field": "service_id"})
    assert found.status_code == 200, found.text
    html = page(found)
    assert html.xpath('//li/@data-service-id') == ["fict-svc-meals", "fict-svc-food-pantry"]
    assert html.xpath('//button/@data-pick-service') == ["fict-svc-meals", "fict-svc-food-pantry"]
    assert set(html.xpath('//button/@hx-target')) == {"#field-service_id-chosen"}
    near = page(browser.client.get("/app/resources", headers=HTMX, params={
        "directory-domain": "food", "directory-zip": "99990", "directory-field": "service_id"}))
    assert near.xpath('//li/@data-service-id') == ["fict-svc-food-pantry"]
    words = page(browser.client.get("/app/resources", headers=HTMX, params={"directory-q": "rides"}))
    assert words.xpath('//li/@data-service-id') == ["fict-svc-rides"]
    refused = browser.client.get("/app/resources", headers=HTMX, params={"directory-domain": "pets"})
    assert refused.status_code == 422 and "is not one of" in refused.text


def test_the_chosen_service_shows_its_name_organization_address_phone_and_hours(browser: Browser,
                                                                                task_id: str) -> None:
    card = browser.get("/app/resources/fict-svc-food-pantry/card?field=service_id")
    assert card.status_code == 200, card.text
    [chosen] = page(card).xpath('//div[@id="field-service_id-chosen"]')
    facts = {cls: text_of(chosen.xpath(f'.//*[@class="{cls}"]')[0]) for cls in (
        "resource-name", "resource-organization", "resource-address", "resource-phone", "resource-hours")}
    assert facts["resource-name"] == "Northside Community Food Pantry (fictional)"
    assert facts["resource-address"] == "1 Example Street, Exampleton, EX 99990"
    assert facts["resource-hours"] == "MO,WE,FR 09:00-17:00"
    assert facts["resource-organization"] != "—" and facts["resource-phone"] != "—"
    assert browser.get("/app/resources/fict-svc-nowhere/card?field=service_id").status_code == 404


def test_the_web_form_refuses_an_unknown_id_at_the_field_then_completes_with_a_chosen_one(
        browser: Browser, task_id: str) -> None:
    url = f"/app/tasks/{task_id}"
    refused = browser.submit(url, f"{url}/complete", service_id="fict-svc-nowhere")
    assert refused.status_code == 422, refused.text
    html = page(refused)
    assert "No active service in the resource directory" in text_of(html.xpath('//p[@id="field-service_id-error"]')[0])
    assert html.xpath('//input[@name="service_id"]/@value') == ["fict-svc-nowhere"]  # kept as typed
    [form] = page(browser.get(url)).xpath('//form[@id="task-form"]')  # its "Save draft" button
    fields = {f.name: f.value or "" for f in form.inputs if f.name}
    drafted = browser.client.post(f"{url}/draft", data={**fields, "service_id": "fict-svc-meals"})
    assert drafted.status_code == 303
    shown = page(browser.get(url))  # the draft's service, drawn under the field
    assert text_of(shown.xpath('//div[@id="field-service_id-chosen"]//*[@class="resource-name"]')[0]) == (
        "Hot Meals at Riverside (fictional)")
    done = browser.submit(url, f"{url}/complete", service_id="fict-svc-food-pantry")
    assert done.status_code == 303, done.text


def test_without_javascript_the_directory_page_lists_the_ids(browser: Browser, task_id: str) -> None:
    listed = browser.get("/app/resources?directory-domain=food")
    assert listed.status_code == 200, listed.text
    html = page(listed)
    assert [text_of(c) for c in html.xpath('//code[@class="resource-id"]')] == ["fict-svc-meals",
                                                                               "fict-svc-food-pantry"]
    assert html.xpath('//select[@name="directory-domain"]/option[@selected]/@value') == ["food"]
    assert not html.xpath('//button[@data-pick-service]')
