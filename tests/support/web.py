"""A browser for page tests: a TestClient keeping its cookies, forms read from the parsed HTML."""

from __future__ import annotations

from typing import Any

import lxml.html
from fastapi.testclient import TestClient
from httpx import Response

from carepath.engine.application import CarePath
from carepath.engine.usecases.passwords import set_password
from carepath.engine.usecases.users import add_user

PASSWORD = "correct horse battery staple"


def page(response: Response) -> Any:
    return lxml.html.fromstring(response.text)


def text_of(element: Any) -> str:
    return " ".join(element.text_content().split())


class Browser:
    def __init__(self, app: Any, host: str = "testclient", base_url: str = "http://testserver") -> None:
        self.client = TestClient(app, raise_server_exceptions=False, base_url=base_url, client=(host, 50000),
                                 follow_redirects=False)

    def get(self, path: str) -> Response:
        return self.client.get(path)

    def submit(self, path: str, form_action: str, **fields: str) -> Response:
        """Open the page at `path`, fill the form posting to `form_action` (its hidden fields as given) and
        send it."""
        forms = page(self.get(path)).xpath(f'//form[@action="{form_action}"]')
        assert forms, f"no form posting to {form_action} on {path}"
        data = {field.name: field.value or "" for field in forms[0].inputs if field.name}
        data.update(fields)
        return self.client.post(form_action, data=data)

    def sign_in(self, name: str, password: str = PASSWORD) -> Response:
        return self.submit("/signin", "/signin", username=name, password=password)


def web_user(engine: CarePath, name: str, role: str, *groups: str, password: str = PASSWORD) -> str:
    add_user(engine, name, role, groups)
    set_password(engine, name, password)
    return name


def signed_in(app: Any, engine: CarePath, name: str, role: str, *groups: str) -> Browser:
    """A new user of this role, signed in to the web app in a browser of their own."""
    web_user(engine, name, role, *groups)
    browser = Browser(app)
    assert browser.sign_in(name).status_code == 303
    return browser
