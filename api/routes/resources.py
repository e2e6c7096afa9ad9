"""/api/resources: the community resource directory (docs/resources.md): search, read one, import (admins)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from pydantic import Field
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from carepath.engine.directory import DOMAINS, ResourceFiles
from carepath.engine.errors import ValidationFailed
from carepath.engine.resource_queries import ResourceFilters, resource_detail, search_resources
from carepath.engine.rules import DIRECTORY_RULES, check_directory_reader, check_role
from carepath.engine.usecases.resources import import_resources

from ..deps import CurrentUser, EngineDep
from ..params import OffsetParam
from ..schemas import BODY_ERRORS, ERROR_RESPONSES, Out, Paged, errors
from ..uploads import read_uploads

router = APIRouter(prefix="/api/resources", tags=["resources"], responses=ERROR_RESPONSES)
IMPORT = f"{router.prefix}/import"


class LanguageOut(Out):
    code: str | None
    name: str | None


class LocationOut(Out):
    location_id: str
    name: str | None
    address_1: str | None
    address_2: str | None
    city: str | None
    state_province: str | None
    postal_code: str | None
    country: str | None
    latitude: float | None
    longitude: float | None


class ResourceOut(Out):
    id: str = Field(description="the service's HSDS id")
    name: str
    status: str
    organization: str | None
    description: str | None
    phone: str | None
    url: str | None
    domains: list[str] = Field(description=f"SDOH domains: {', '.join(DOMAINS)}")
    languages: list[LanguageOut]
    locations: list[LocationOut]


class ResourceDetailOut(ResourceOut):
    details: dict[str, Any] = Field(description="eligibility, application process, fees, service areas, "
                                                "schedules (as HSDS gives them), taxonomy terms, source")


class ResourcePage(Paged):
    items: list[ResourceOut]


class ImportProblemOut(Out):
    where: str = Field(description="file and item or row: 'services.csv row 4'")
    service_id: str | None
    reason: str


class ImportOut(Out):
    source: str
    created: int
    updated: int
    skipped: int
    problems: list[ImportProblemOut]


@router.get("", response_model=ResourcePage, responses=errors(422))
def search(engine: EngineDep, user: CurrentUser,
           domain: Annotated[str | None, Query(description=f"one of {', '.join(DOMAINS)}")] = None,
           zip: Annotated[str | None, Query(max_length=20, description="a postal code the service serves "
                                            "or is given at")] = None,
           q: Annotated[str | None, Query(max_length=200, description="words in the name, description or "
                                          "organization")] = None,
           language: Annotated[str | None, Query(max_length=50, description="ISO 639 code or name")] = None,
           open_now: Annotated[bool, Query(description="open at this moment (care setting's time zone)")] = False,
           limit: Annotated[int, Query(ge=1, le=100)] = 20, offset: OffsetParam = 0,
           exact_total: Annotated[bool, Query(description="count every match (slower)")] = False) -> ResourcePage:
    check_directory_reader(user)
    filters = ResourceFilters(domain=domain, zip=zip, q=q, language=language, open_now=open_now)
    with engine.db.read() as session:
        page = search_resources(session, filters, now=engine.now(), zone=engine.config.calendars.context().tz,
                                limit=limit, offset=offset, exact_total=exact_total)
    return ResourcePage(items=[ResourceOut.model_validate(item) for item in page.items], total=page.total,
                        total_exact=page.total_exact, limit=limit, offset=offset)


@router.get("/{service_id}", response_model=ResourceDetailOut, responses=errors(404, 422))
def read_one(service_id: str, engine: EngineDep, user: CurrentUser) -> ResourceDetailOut:
    check_directory_reader(user)
    with engine.db.read() as session:
        view = resource_detail(session, service_id)
    details = {k: v.isoformat() if isinstance(v, date | datetime) else v for k, v in (view.details or {}).items()}
    return ResourceDetailOut.model_validate({**view.__dict__, "details": details})


IMPORT_BODY = {"requestBody": {"required": True, "content": {
    "application/json": {"schema": {"description": "a list of HSDS 3.0 services (each as GET /services/{id} "
                                    "answers it), or a paged GET /services answer",
                                    "anyOf": [{"type": "array", "items": {"type": "object"}}, {"type": "object"}]}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["files"], "properties": {"files": {
        "type": "array", "items": {"type": "string", "format": "binary"},
        "description": "one .json file, or a tabular data package: datapackage.json and its CSV files"}}}}}}}


@router.post("/import", response_model=ImportOut, responses=errors(*BODY_ERRORS), openapi_extra=IMPORT_BODY)
async def import_directory(request: Request, engine: EngineDep, user: CurrentUser) -> ImportOut:
    """Admins load an HSDS 3.0 dataset: a JSON body (a list of services or a paged GET /services answer),
    or a multipart upload: one .json file, or a tabular data package's files (datapackage.json and the CSVs)
    in the field `files`."""
    check_role(DIRECTORY_RULES["import"], user)  # before a large body is read
    files = await _files(request)
    result = await run_in_threadpool(import_resources, engine, user, files)
    return ImportOut.model_validate(result, from_attributes=True)


async def _files(request: Request) -> ResourceFiles:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=100)
        uploads = [v for v in form.getlist("files") + form.getlist("file") if isinstance(v, UploadFile)]
        if not uploads:
            raise ValidationFailed("the upload has no files: send them in the field 'files'")
        sources = read_uploads(uploads, request.app.state.settings.max_upload_bytes)
        if len(sources) == 1 and sources[0].name.lower().endswith(".json") and sources[0].name != "datapackage.json":
            return ResourceFiles(sources[0].name, json=sources[0].content)
        return ResourceFiles("the uploaded data package", package={s.name: s.content for s in sources})
    if content_type.startswith("application/json"):
        return ResourceFiles("the request body", json=await request.body())
    raise ValidationFailed("send the dataset as application/json or as a multipart upload in the field 'files'")

