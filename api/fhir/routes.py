"""/fhir: the routes, built from the resource table (reads.RESOURCES) — a read and a search per resource type —
and the CapabilityStatement built from the same table (capability.py).

The routes are left out of /openapi.json: a FHIR client reads /fhir/metadata instead.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request

from carepath.engine.errors import BadRequest

from ..deps import ClientDep, EngineDep, SendingUser, current_user
from . import search_params as sp
from .capability import capability_statement
from .reads import RESOURCES, FhirResource, Reader, Resource
from .wire import PREFIX, FhirResponse, check_format

router = APIRouter(prefix=PREFIX, tags=["fhir"], dependencies=[Depends(check_format)],
                   default_response_class=FhirResponse, include_in_schema=False)


def base_url(request: Request) -> str:
    return f"{str(request.base_url).rstrip('/')}{PREFIX}"


@router.get("/metadata")
def metadata(request: Request, engine: EngineDep) -> FhirResponse:
    """What this server supports (public, like /openapi.json: it holds no patient data)."""
    return FhirResponse(capability_statement(base_url(request), engine.now(), RESOURCES))


def searchset(request: Request, kind: FhirResource, found: list[Resource], page: sp.Paging,
              more: bool) -> dict[str, Any]:
    """A searchset Bundle with the paging links: self, and next and previous where there are such pages."""
    here = f"{base_url(request)}/{kind.name}"
    kept = [(n, v) for n, v in request.query_params.multi_items() if n not in (sp.COUNT.name, sp.OFFSET.name)]

    def link(relation: str, offset: int) -> dict[str, str]:
        query = urlencode([*kept, (sp.COUNT.name, str(page.count)), (sp.OFFSET.name, str(offset))])
        return {"relation": relation, "url": f"{here}?{query}"}

    links = [link("self", page.offset)]
    if more:
        links.append(link("next", page.offset + page.count))
    if page.offset > 0:
        links.append(link("previous", max(0, page.offset - page.count)))
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if found:
        bundle["entry"] = [{"fullUrl": f"{here}/{r['id']}", "resource": r, "search": {"mode": "match"}}
                           for r in found]
    return bundle


def _reader(kind: FhirResource, engine: EngineDep, user: SendingUser, client: ClientDep) -> Reader:
    """Integration accounts read only the kinds that say so (their organization's referrals)."""
    return Reader(engine, user if kind.integration else current_user(user), client)


def _add_routes(kind: FhirResource) -> None:
    def search(request: Request, engine: EngineDep, user: SendingUser, client: ClientDep) -> FhirResponse:
        reader = _reader(kind, engine, user, client)
        values = sp.read_query(request.query_params.multi_items(), kind.params, kind.name)
        page = sp.paging(values)
        if page.offset > sp.MAX_OFFSET:
            raise BadRequest(f"_offset is larger than {sp.MAX_OFFSET}: narrow the search instead")
        found, more = kind.search(reader, values, page)
        return FhirResponse(searchset(request, kind, found, page, more))

    def read(resource_id: str, engine: EngineDep, user: SendingUser, client: ClientDep) -> FhirResponse:
        return FhirResponse(kind.read(_reader(kind, engine, user, client), resource_id))

    router.add_api_route(f"/{kind.name}", search, methods=["GET"], name=f"fhir_search_{kind.name}")
    router.add_api_route(f"/{kind.name}/{{resource_id}}", read, methods=["GET"], name=f"fhir_read_{kind.name}")


for resource_kind in RESOURCES:
    _add_routes(resource_kind)
