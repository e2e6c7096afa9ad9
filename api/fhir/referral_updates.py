"""What FHIR clients write about social needs: an AHC HRSN screening (POST /fhir/QuestionnaireResponse starts
the sdoh-screening-referral pathway, engine/sdoh/fhir_screening.py), and the organization's status updates
of its referral Tasks, as FHIR (docs/fhir.md, "Referral updates"):
PUT /fhir/Task/{id} with the Task, or PATCH with a JSON Patch (application/json-patch+json) of status,
statusReason, businessStatus and output. Read by engine/sdoh/fhir_task_update.py into the call
`POST /api/referrals/{id}/status` makes: the same use case, the same referral rules, and the pathway moves
in the same transaction. The version read goes in If-Match (W/"N", the ETag) or meta.versionId: a stale one
is refused (409). A Task the caller may not see (another organization's, or a human task) is 404.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from fastapi import APIRouter, Depends, Header, Request

from carepath.engine.errors import BadRequest, Conflict, NotFound, ValidationFailed
from carepath.engine.interop.fhir_inbound import read_document, read_json
from carepath.engine.sdoh.fhir_task_update import apply_patch, read_task_update
from carepath.engine.usecases.referrals import ReferralView, get_referral, update_referral_status
from carepath.engine.usecases.screenings import start_from_questionnaire_response

from ..deps import EngineDep, SendingUser
from .inbound import check_content_type
from .referrals import patients_of, task_resource
from .wire import PREFIX, FhirResponse, check_format

router = APIRouter(prefix=PREFIX, tags=["fhir"], dependencies=[Depends(check_format)],
                   default_response_class=FhirResponse, include_in_schema=False)
PATCH_TYPE = "application/json-patch+json"
FHIR_ELEMENTS = {"status_reason": "statusReason", "outcome": "businessStatus", "status": "status"}


def _current(engine: Any, user: Any, task_id: str) -> ReferralView:
    try:
        return get_referral(engine, user, task_id)
    except NotFound:
        raise NotFound(f"Task/{task_id} is not a referral Task this account may update (human tasks are "
                       "completed through /api/tasks)") from None


def _update(engine: Any, user: Any, view: ReferralView, task: Any, if_match: str | None) -> FhirResponse:
    current = _task(engine, view)
    asked = read_task_update(current, task, if_match)
    outcome = None if asked.outcome == view.outcome else asked.outcome
    unchanged = asked.status == view.status and outcome is None and \
        (asked.status_reason or None) == (view.status_reason or None)
    if unchanged:  # the Task as it is: nothing to record (a resend)
        if asked.version not in (None, view.version):
            raise Conflict(f"Task/{view.id} changed since version {asked.version} was read (now {view.version})")
        return _answer(engine, view)
    try:
        return _answer(engine, update_referral_status(engine, user, view.id, asked.status, asked.status_reason, outcome,
                                              asked.version))
    except ValidationFailed as refused:
        raise _in_fhir_words(refused) from None


def _in_fhir_words(refused: ValidationFailed) -> ValidationFailed:
    """The referral rules' refusal, naming the Task's elements instead of the JSON API's fields."""
    message = refused.message
    for field, element in FHIR_ELEMENTS.items():
        message = message.replace(f"({field})", f"(Task.{element})")
    problems = [replace(p, field=FHIR_ELEMENTS.get(p.field or "", p.field)) for p in refused.problems]
    return ValidationFailed(message, problems)


def _task(engine: Any, view: ReferralView) -> dict[str, Any]:
    return task_resource(view, patients_of(engine, [view]).get(view.instance_id))


def _answer(engine: Any, view: ReferralView) -> FhirResponse:
    return FhirResponse(_task(engine, view), headers={"ETag": f'W/"{view.version}"'})


@router.put("/Task/{task_id}", name="fhir_update_referral_task")
async def put_task(task_id: str, request: Request, engine: EngineDep, user: SendingUser,
                   if_match: str | None = Header(None, max_length=60)) -> FhirResponse:
    check_content_type(request)
    task = read_document(await request.body())
    return _update(engine, user, _current(engine, user, task_id), task, if_match)


@router.patch("/Task/{task_id}", name="fhir_patch_referral_task")
async def patch_task(task_id: str, request: Request, engine: EngineDep, user: SendingUser,
                     if_match: str | None = Header(None, max_length=60)) -> FhirResponse:
    given = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if given != PATCH_TYPE:
        raise BadRequest(f"a PATCH of a Task is a JSON Patch: Content-Type {PATCH_TYPE}")
    operations = read_json(await request.body())
    view = _current(engine, user, task_id)
    return _update(engine, user, view, apply_patch(_task(engine, view), operations), if_match)


@router.post("/QuestionnaireResponse", name="fhir_create_questionnaire_response", status_code=201)
async def post_screening(request: Request, engine: EngineDep, user: SendingUser) -> FhirResponse:
    """Answered 201 with the episode started (Location: its CarePlan) in an OperationOutcome: the answers are
    kept in the episode, not as a QuestionnaireResponse of this server."""
    check_content_type(request)
    started = start_from_questionnaire_response(engine, user, read_document(await request.body()))
    careplan = f"CarePlan/{started.id}"
    body = {"resourceType": "OperationOutcome", "issue": [{
        "severity": "information", "code": "informational", "diagnostics": f"screening taken: {careplan} started",
        "details": {"text": careplan}}]}
    return FhirResponse(body, status_code=201, headers={"Location": f"{PREFIX}/{careplan}"})
