"""Camunda 7's REST API for deploying and starting, under /engine-rest, so that Camunda Modeler's Deploy
and Start buttons work against CarePath (the calls its Camunda 7 plugin makes, client/src/plugins/
camunda-plugin/shared/CamundaAPI.js). Each answer comes from the product's own use cases: a deploy is
`deploy_pathways` (same checks, same versioning), a start is `start_instance`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData, UploadFile

from carepath.engine.application import CarePath
from carepath.engine.definitions import SourceFile
from carepath.engine.deployment_queries import DefinitionRow, definitions_of, list_deployments
from carepath.engine.errors import BadRequest, NotFound
from carepath.engine.identity import Principal
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.users import known_groups

from ..deps import EngineDep
from ..uploads import read_uploads
from .variables import VariableIn, variables_as_data
from .wire import CAMUNDA_VERSION, PREFIX, RestUser

CREATE = f"{PREFIX}/deployment/create"
# Not in /openapi.json (as /fhir): its answers are Camunda's shapes, documented by Camunda and docs/api.md.
router = APIRouter(prefix=PREFIX, include_in_schema=False)

MAX_FILES = 50
MAX_FIELD = 255
# The form fields of Camunda's deployment/create besides the files; CarePath versions identical content
# once whatever the filtering flags say, and has no tenants and no delayed activation.
FLAGS = {"enable-duplicate-filtering", "deploy-changed-only"}
REFUSED_FIELDS = {"tenant-id": "CarePath has no tenants: leave the tenant ID empty",
                  "deployment-activation-time": "CarePath activates a deployment at once: send no activation time"}


def camunda_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"


def definition_id(key: str, version: int) -> str:
    return f"{key}:{version}"


def definition_json(d: DefinitionRow) -> dict[str, Any]:
    return {"id": definition_id(d.key, d.version), "key": d.key, "category": None, "description": None,
            "name": d.name, "version": d.version, "resource": d.resource, "deploymentId": d.deployment_id,
            "diagram": None, "suspended": d.retired, "tenantId": None, "versionTag": None,
            "historyTimeToLive": None, "startableInTasklist": True}


def deployment_json(deployment_id: str, deployed_at: datetime, name: str | None = None,
                    source: str | None = None) -> dict[str, Any]:
    return {"links": [], "id": deployment_id, "name": name, "source": source,
            "deploymentTime": camunda_time(deployed_at), "tenantId": None}


@router.get("/version")
def version(user: RestUser) -> dict[str, str]:
    """The Camunda 7 REST contract this API follows."""
    return {"version": CAMUNDA_VERSION}


@router.get("/deployment")
def deployments(engine: EngineDep, user: RestUser,
                firstResult: Annotated[int, Query(ge=0, le=2**31 - 1)] = 0,  # noqa: N803 - Camunda's names
                maxResults: Annotated[int, Query(ge=0, le=1000)] = 100) -> list[dict[str, Any]]:  # noqa: N803
    """Deployments, oldest first (the modeler's connection check asks for none)."""
    if maxResults == 0:
        return []
    with engine.db.read() as session:
        return [deployment_json(d.id, d.deployed_at) for d in list_deployments(session, firstResult, maxResults)]


def _fields_and_files(form: FormData) -> tuple[dict[str, str], list[UploadFile]]:
    fields: dict[str, str] = {}
    files: list[UploadFile] = []
    for part, value in form.multi_items():
        if isinstance(value, UploadFile):
            files.append(value)
        elif part in REFUSED_FIELDS:
            if value.strip():
                raise BadRequest(REFUSED_FIELDS[part])
        elif part in FLAGS or part in ("deployment-name", "deployment-source"):
            if len(value) > MAX_FIELD:
                raise BadRequest(f"'{part}' is longer than {MAX_FIELD} characters")
            fields[part] = value
        else:
            raise BadRequest(f"'{part[:100]}' is not a field of deployment/create: send the files as file parts, "
                             "and deployment-name, deployment-source, enable-duplicate-filtering")
    return fields, files


@router.post("/deployment/create")
async def create_deployment(request: Request, engine: EngineDep, user: RestUser) -> dict[str, Any]:
    """Deploy the uploaded .bpmn/.dmn files: identical content answers the versions already deployed."""
    async with request.form(max_files=MAX_FILES, max_fields=MAX_FILES) as form:
        fields, uploads = _fields_and_files(form)
        sources = read_uploads(uploads, request.app.state.settings.max_upload_bytes)
    return await run_in_threadpool(_deploy, engine, user, sources, fields)


def _deploy(engine: CarePath, user: Principal, sources: list[SourceFile], fields: dict[str, str]) -> dict[str, Any]:
    result = deploy_pathways(engine, user, sources, known_groups(engine))
    with engine.db.read() as session:
        found = definitions_of(session, [(p.key, p.version) for p in result.processes])
    created = [d for d, p in zip(found, result.processes, strict=True) if p.created]
    main = (created or found)[0]
    body = deployment_json(main.deployment_id, main.deployed_at, fields.get("deployment-name"),
                           fields.get("deployment-source"))
    # The versions the upload made or found unchanged, so that the modeler's Start button has one to start.
    body["deployedProcessDefinitions"] = {definition_id(d.key, d.version): definition_json(d) for d in found}
    body.update(deployedCaseDefinitions=None, deployedDecisionDefinitions=None,
                deployedDecisionRequirementsDefinitions=None)
    return body


class StartIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    businessKey: str | None = Field(default=None, max_length=255)  # noqa: N815 - Camunda's names
    variables: dict[str, VariableIn] | None = None


def _start(engine: CarePath, user: Principal, key: str, version: int | None, body: StartIn) -> dict[str, Any]:
    if not body.businessKey:
        raise BadRequest("a business key is required: CarePath names each episode by it (e.g. the referral "
                         "number); fill in the business key in the start configuration")
    view = start_instance(engine, user, key, business_key=body.businessKey,
                          data=variables_as_data(body.variables), version=version)
    return {"links": [], "id": view.id, "definitionId": definition_id(view.pathway_key, view.version),
            "businessKey": view.business_key, "caseInstanceId": None, "ended": view.ended_at is not None,
            "suspended": False, "tenantId": None}


@router.post("/process-definition/key/{key}/start")
def start_by_key(key: str, body: StartIn, engine: EngineDep, user: RestUser) -> dict[str, Any]:
    """Start an episode of the pathway's latest version that is not retired."""
    return _start(engine, user, key, None, body)


@router.post("/process-definition/{definition}/start")
def start_by_id(definition: str, body: StartIn, engine: EngineDep, user: RestUser) -> dict[str, Any]:
    """Start an episode of one version; its id is `key:version`, as deployment/create answers it."""
    key, _, number = definition.rpartition(":")
    if not key or not number.isdigit() or len(number) > 9:
        raise NotFound(f"there is no process definition '{definition[:200]}': its id is 'key:version'")
    return _start(engine, user, key, int(number), body)
