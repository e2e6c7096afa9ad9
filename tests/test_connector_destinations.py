"""Where connectors may call: a URL is covered by a configured destination's base URL or refused, and the
setting that configures them is checked when the server starts."""

from __future__ import annotations

import pytest

from carepath.api.settings import Settings
from carepath.engine.connector_destinations import Destination, OutsideDestinations, destination_for

DESTINATIONS = {"lab": Destination("lab", "https://lab.example.org/api"),
                "lab-admin": Destination("lab-admin", "https://lab.example.org/api/admin"),
                "local": Destination("local", "http://127.0.0.1:8080")}


@pytest.mark.parametrize(("url", "name"), [
    ("https://lab.example.org/api", "lab"),
    ("https://lab.example.org/api/orders?x=1", "lab"),
    ("https://LAB.example.org:443/api/orders", "lab"),
    ("https://lab.example.org/api/admin/users", "lab-admin"),  # the longest base wins
    ("http://127.0.0.1:8080/anything", "local"),
])
def test_a_url_under_a_base_url_goes_to_that_destination(url: str, name: str) -> None:
    assert destination_for(url, DESTINATIONS).name == name


@pytest.mark.parametrize("url", [
    "http://lab.example.org/api/orders",  # another scheme
    "https://lab.example.org:8443/api/orders",  # another port
    "https://lab.example.org/apix",  # a sibling path, not below the base
    "https://lab.example.org.evil.com/api",
    "https://user@lab.example.org/api/x",
    "https://lab.example.org/api/../secret",
    "https://lab.example.org/api/%2e%2E/secret",  # the same, percent-encoded
    "https://lab.example.org/api/..%2fsecret",
    "https://lab.example.org/api/..\\secret",
    "http://127.0.0.1:8081/",
    "ftp://lab.example.org/api",
    "not a url",
])
def test_any_other_url_is_refused(url: str) -> None:
    with pytest.raises(OutsideDestinations):
        destination_for(url, DESTINATIONS)


@pytest.mark.parametrize(("value", "words"), [
    ('{"lab": {}}', "needs a base_url"),
    ('{"lab": {"base_url": "ftp://x"}}', "http(s) URL"),
    ('{"lab": {"base_url": "https://x", "token": "secret"}}', "unknown field(s) token"),
    ('{"lab": {"base_url": "https://x", "headers": {"X": 1}}}', "headers must map names to texts"),
    ("[]", "must be a JSON object"),
])
def test_a_wrong_destination_setting_stops_the_server_naming_it(value: str, words: str) -> None:
    with pytest.raises(ValueError, match="CAREPATH_CONNECTOR_DESTINATIONS") as raised:
        Settings(connector_destinations=value)
    assert words in str(raised.value)


def test_the_setting_reaches_the_engine() -> None:
    config = Settings(connector_destinations='{"fhir": {"base_url": "https://ehr.test/fhir", '
                                             '"bearer_token_env": "EHR_TOKEN"}}').engine_config()
    assert config.connector_destinations == {"fhir": Destination("fhir", "https://ehr.test/fhir", "EHR_TOKEN")}
