"""The admin's partner page: add through the form (the secret shown once on that answer, never on the list),
a bad endpoint beside its field, dead deliveries listed and sent again, non-admins refused."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from carepath.api.app import create_app
from carepath.api.settings import Settings
from carepath.engine.application import CarePath
from carepath.engine.persistence.unit_of_work import UnitOfWork
from carepath.engine.usecases.outbox import deliver_outbound, enqueue_delivery
from tests.support.web import page, signed_in, text_of, web_user

PAGE = "/app/admin/partners"


def _app(engine: CarePath, database_url: str) -> Any:
    engine.config = replace(engine.config, partner_secret_key=b"w" * 40, outbound_max_attempts=1)
    return create_app(Settings(database_url=database_url, deploy_shipped_pathways=False, scheduler_enabled=False),
                      engine)


def test_an_admin_adds_a_partner_and_sees_its_secret_once(engine: CarePath, database_url: str) -> None:
    web = _app(engine, database_url)
    web_user(engine, "ada", "admin")
    admin = signed_in(web, "ada")
    refused = admin.submit(PAGE, PAGE, id="eastside", name="Eastside", endpoint_url="http://cbo.example/")
    assert refused.status_code == 422
    assert page(refused).xpath('//*[@id="endpoint_url"]')[0].get("aria-invalid") == "true"
    added = admin.submit(PAGE, PAGE, id="eastside", name="Eastside", endpoint_url="https://cbo.example/h",
                         directory_organizations="org-1, org-2")
    assert added.status_code == 201
    secret = page(added).xpath('//*[@id="new-secret"]')[0].get("value")
    assert secret.startswith("cps_")
    listed = admin.get(PAGE)
    assert secret not in listed.text
    row = page(listed).xpath('//tr[@data-partner="eastside"]')[0]
    assert "org-1, org-2" in text_of(row) and "active" in text_of(row)
    rotated = admin.submit(PAGE, f"{PAGE}/eastside/rotate-secret")
    assert page(rotated).xpath('//*[@id="new-secret"]')[0].get("value") not in (secret, None)
    assert admin.submit(PAGE, f"{PAGE}/eastside/deactivate").status_code == 303
    assert "inactive" in text_of(page(admin.get(PAGE)).xpath('//tr[@data-partner="eastside"]')[0])


def test_dead_deliveries_are_listed_and_sent_again(engine: CarePath, database_url: str) -> None:
    web = _app(engine, database_url)
    web_user(engine, "ada", "admin")
    admin = signed_in(web, "ada")
    admin.submit(PAGE, PAGE, id="eastside", name="Eastside", endpoint_url="https://cbo.example/h")
    engine.outbound_poster = lambda url, body, headers: 410
    with UnitOfWork(engine) as uow:
        delivery = enqueue_delivery(uow, partner_id="eastside", kind="referral", payload={}, idempotency_key="k1")
        uow.commit()
    deliver_outbound(engine)
    row = page(admin.get(PAGE)).xpath(f'//tr[@data-delivery="{delivery}"]')[0]
    assert "answered 410" in text_of(row)
    assert admin.submit(PAGE, f"{PAGE}/deliveries/{delivery}/retry").status_code == 303
    assert not page(admin.get(PAGE)).xpath(f'//tr[@data-delivery="{delivery}"]')


def test_the_page_is_the_admins(engine: CarePath, database_url: str) -> None:
    web = _app(engine, database_url)
    web_user(engine, "sam", "coordinator")
    assert signed_in(web, "sam").get(PAGE).status_code == 403
