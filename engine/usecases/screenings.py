"""A screening sent as FHIR (a QuestionnaireResponse, engine/sdoh/fhir_screening.py) starts the
sdoh-screening-referral pathway for its patient: the same start as `POST /api/instances` (start_instance),
the patient found or created from the subject's identifiers as an inbound encounter's is."""

from __future__ import annotations

from typing import Any

from ..application import CarePath
from ..identity import Principal
from ..patients import PatientDetails
from ..sdoh.fhir_screening import PATHWAY, read_questionnaire_response, start_data
from ..views import InstanceView
from .adt_routing import _kept_demographics  # what a message says of the person, malformed values left out
from .instances import start_instance


def start_from_questionnaire_response(app: CarePath, principal: Principal, document: dict[str, Any]) -> InstanceView:
    today = app.now().date()
    start = read_questionnaire_response(document, today)
    patient = PatientDetails(start.identifiers, _kept_demographics(start.demographics, today))
    return start_instance(app, principal, PATHWAY, business_key=start.business_key, data=start_data(start),
                          patient=patient)
