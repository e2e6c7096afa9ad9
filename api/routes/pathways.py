"""/api/pathways: deploy, list, versions, sources, retire, start instances, move episodes between versions."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, File, Query, Request, UploadFile
from fastapi.responses import Response

from carepath.engine.errors import NotFound
from carepath.engine.queries import list_pathways, pathway_versions
from carepath.engine.usecases.access import record_access
from carepath.engine.usecases.deploy import deploy_pathways, retire_version
from carepath.engine.usecases.diagrams import pathway_diagram
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.migrations import migrate_episodes
from carepath.engine.usecases.users import known_groups

from ..attachments import pathway_source_response
from ..deps import ClientDep, CurrentUser, EngineDep, SendingUser
from ..migration_schemas import MigrationIn, MigrationOut
from ..params import VersionPath
from ..schemas import (
    BODY_ERRORS,
    ERROR_RESPONSES,
    DeployOut,
    InstanceOut,
    PathwayOut,
    PathwayVersionOut,
    StartIn,
    errors,
)
from ..uploads import read_uploads

router = APIRouter(prefix="/api/pathways", tags=["pathways"], responses=ERROR_RESPONSES)


@router.post("", response_model=DeployOut, status_code=201,
             responses={200: {"model": DeployOut, "description": "identical content: existing versions"},
                        **errors(*BODY_ERRORS)})
def deploy(request: Request, response: Response, engine: EngineDep, user: CurrentUser,
           files: Annotated[list[UploadFile], File(description="one or more .bpmn / .dmn files")]) -> DeployOut:
    sources = read_uploads(files, request.app.state.settings.max_upload_bytes)
    result = deploy_pathways(engine, user, sources, known_groups(engine))
    if not any(p.created for p in result.processes):
        response.status_code = 200
    return DeployOut.model_validate(result)


@router.get("", response_model=list[PathwayVersionOut])
def list_all(engine: EngineDep, user: CurrentUser) -> list[PathwayVersionOut]:
    with engine.db.read() as session:
        return [PathwayVersionOut.model_validate(v) for v in list_pathways(session)]


@router.get("/{key}", response_model=PathwayOut, responses=errors(404, 422))
def versions(key: str, engine: EngineDep, user: CurrentUser) -> PathwayOut:
    with engine.db.read() as session:
        found = pathway_versions(session, key)
    if not found:
        raise NotFound(f"pathway '{key}' is not deployed")
    return PathwayOut(key=key, versions=[PathwayVersionOut.model_validate(v) for v in found])


@router.get("/{key}/versions/{version}/bpmn", response_class=Response,
            responses={200: {"content": {"application/xml": {}}}, **errors(401, 403, 404, 422, json=False)})
def source(key: str, version: VersionPath, engine: EngineDep, user: CurrentUser) -> Response:
    return pathway_source_response(engine, key, version, "inline")


@router.get("/{key}/versions/{version}/diagram.svg", response_class=Response,
            responses={200: {"content": {"image/svg+xml": {}}}, **errors(401, 403, 404, 422, json=False)})
def diagram(key: str, version: VersionPath, engine: EngineDep, user: CurrentUser, client: ClientDep,
            instance: Annotated[str | None, Query(description="an instance of this version: its path is "
                                                                "highlighted")] = None) -> Response:
    """The diagram drawn from its own layout, as a self-contained SVG (no scripts); every element carries
    its BPMN id as `data-element-id`."""
    svg = pathway_diagram(engine, user, key, version, instance)
    if instance is not None:  # an episode's path is part of the patient's record
        record_access(engine, user, "diagram", instance, client=client)
    return Response(svg, media_type="image/svg+xml")


@router.post("/{key}/versions/{version}/retire", status_code=204, responses=errors(404, 409, 422))
def retire(key: str, version: VersionPath, engine: EngineDep, user: CurrentUser) -> Response:
    retire_version(engine, user, key, version)
    return Response(status_code=204)


@router.post("/{key}/instances", response_model=InstanceOut, status_code=201,
             responses=errors(404, 409, *BODY_ERRORS))
def start(key: str, body: StartIn, engine: EngineDep, user: SendingUser) -> InstanceOut:
    view = start_instance(engine, user, key, business_key=body.business_key, patient_id=body.patient_id,
                          data=body.data, version=body.version,
                          patient=body.patient.details() if body.patient else None)
    return InstanceOut.model_validate(view)


@router.post("/{key}/migrations", response_model=MigrationOut, responses=errors(404, 409, *BODY_ERRORS))
def migrations(key: str, body: MigrationIn, engine: EngineDep, user: CurrentUser) -> MigrationOut:
    """Move running episodes from one version to another: with `dry_run` (the default) the plan for each,
    else each moved in its own transaction; the answer says what happened to each."""
    report = migrate_episodes(engine, user, key, from_version=body.from_version, to_version=body.to_version,
                              instance_ids=body.instance_ids, dry_run=body.dry_run, limit=body.limit,
                              after=body.after)
    return MigrationOut.model_validate(report)
