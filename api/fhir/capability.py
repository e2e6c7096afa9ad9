"""The CapabilityStatement (GET /fhir/metadata), built from the resource table the routes are built from."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .wire import FHIR_VERSION, MEDIA_TYPE

if TYPE_CHECKING:
    from .reads import FhirResource

INTERACTIONS = ("read", "search-type")  # what every resource type of the table answers
# Encounter notifications taken in (api/fhir/inbound.py, docs/fhir.md): by integration accounts only.
INBOUND_DOCUMENTATION = ("Encounter notifications from EHRs and HIEs, by integration accounts only, routed like "
                         "HL7 v2 ADT: POST an Encounter here, a Da Vinci Unsolicited Notifications message Bundle to "
                         "$process-message, or a Subscriptions R5 Backport notification to "
                         "$subscription-notification (the rest-hook endpoint).")
SCREENING_DOCUMENTATION = ("An AHC HRSN screening (questionnaire http://loinc.org/q/96777-8): starts the "
                           "sdoh-screening-referral pathway for its subject; answered 201 with the CarePlan "
                           "(Location). Not stored as a QuestionnaireResponse: no read or search.")
INBOUND = [{"type": "Encounter", "documentation": INBOUND_DOCUMENTATION, "interaction": [{"code": "create"}]},
           {"type": "QuestionnaireResponse", "documentation": SCREENING_DOCUMENTATION,
            "interaction": [{"code": "create"}]}]
OPERATIONS = [{"name": "process-message",
               "definition": "http://hl7.org/fhir/OperationDefinition/MessageHeader-process-message"}]


def capability_statement(base: str, now: datetime, resources: Sequence[FhirResource]) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement", "status": "active", "date": now.isoformat(), "kind": "instance",
        "software": {"name": "CarePath"},
        "implementation": {"description": "CarePath: care pathways, their episodes and human tasks", "url": base},
        "fhirVersion": FHIR_VERSION, "format": ["json", MEDIA_TYPE],
        "rest": [{
            "mode": "server",
            "documentation": "Read and search, and encounter notifications taken in. Every interaction but this one "
                             "needs a bearer token, as the JSON API (/api) does, and sees what the JSON API shows "
                             "that user.",
            "security": {"cors": False, "description": "Authorization: Bearer <CarePath API token or OpenID "
                                                       "Connect access token>"},
            "resource": [{
                "type": kind.name, "documentation": kind.documentation,
                "interaction": [{"code": code} for code in (*INTERACTIONS, *kind.writes)],
                "searchParam": [{"name": p.name, "type": p.type, "documentation": p.documentation}
                                for p in kind.params],
            } for kind in resources] + INBOUND,
            "operation": OPERATIONS,
        }],
    }
