"""/api/reports: deadline compliance per declared quality measure, as JSON, CSV or an SVG bar chart."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from carepath.engine.usecases.periods import report_period
from carepath.engine.usecases.reports import MISSES_PAGE, compliance_page
from carepath.engine.usecases.sdoh_figures import social_needs_figures

from ..attachments import content_disposition
from ..compliance_files import misses_csv_lines, report_csv, report_svg
from ..deps import CurrentUser, EngineDep
from ..params import INSTANT_OR_DAY, InstantOrDay
from ..schemas import ERROR_RESPONSES, errors

router = APIRouter(prefix="/api/reports", tags=["reports"], responses=ERROR_RESPONSES)


@router.get("/compliance", responses={200: {"content": {"application/json": {}, "text/csv": {}, "image/svg+xml": {}}},
                                       **errors(404, 422)})
def compliance(request: Request, engine: EngineDep, user: CurrentUser, pathway: str | None = None,
               from_: Annotated[InstantOrDay, Query(alias="from", description=f"clock started at or after; "
                                                                             f"{INSTANT_OR_DAY}")] = None,
               to: Annotated[InstantOrDay, Query(description=f"clock started before; {INSTANT_OR_DAY} (the day "
                                                             "included)")] = None,
               group: Annotated[str | None, Query(description="the measures whose task was offered to this group "
                                                            "(a team's own deadlines)")] = None,
               format: Literal["json", "csv", "svg"] = "json",
               lines: Annotated[Literal["measures", "misses"], Query(
                   description="CSV only: a line per measure, or a line per miss (every miss)")] = "measures",
               misses_limit: Annotated[int, Query(ge=0, le=1000, description="JSON: misses listed per page")
                                       ] = MISSES_PAGE,
               misses_after: Annotated[str | None, Query(max_length=1000, description=(
                   "JSON: the misses after this cursor (the answer's `misses.next_after`)"))] = None) -> Any:
    """For each measure the pathways declare: episodes decided (denominator), met, rate, median days to
    meet it, and its misses with their patient, the task each waited for, who held it and the groups
    it was offered to; open, excluded and not-applicable episodes are counted beside it. The misses
    are paged across measures (in pathway, measure, episode-start order): `misses.total` in all, the
    page's in each measure's `misses`, `misses.next` the next page's link; the misses CSV has them all.
    Only episodes the user may read. Auditors, admins, supervisors and clinical leads; a pathway never
    deployed: 404."""
    from_, to = report_period(engine, pathway, from_, to)
    filters: dict[str, Any] = {"pathway": pathway, "start": from_, "end": to, "group": group}
    if format == "csv" and lines == "misses":
        rows = compliance_page(engine, user, **filters).rows
        return StreamingResponse(misses_csv_lines(rows), media_type="text/csv",
                                 headers={"Content-Disposition": content_disposition("attachment", "misses.csv")})
    if format in ("csv", "svg"):  # the figures alone: no miss is listed
        rows = compliance_page(engine, user, **filters, misses_limit=0).rows
        if format == "svg":
            return Response(report_svg(rows), media_type="image/svg+xml")
        return Response(report_csv(rows), media_type="text/csv",
                        headers={"Content-Disposition": content_disposition("attachment", "compliance.csv")})
    report = compliance_page(engine, user, **filters, misses_limit=misses_limit, misses_after=misses_after)
    following = (str(request.url.include_query_params(misses_after=report.misses_next))
                 if report.misses_next else None)
    # Already plain JSON values (as FastAPI would encode them): skip its per-value encoder.
    return JSONResponse({"pathway": pathway, "from": from_.isoformat() if from_ else None,
                         "to": to.isoformat() if to else None, "group": group,
                         "measures": [r.as_dict() for r in report.rows],
                         "misses": {"total": report.misses_total, "limit": misses_limit, "after": misses_after,
                                    "next_after": report.misses_next, "next": following}})


@router.get("/social-needs", responses=errors(403, 422))
def social_needs(engine: EngineDep, user: CurrentUser,
                 from_: Annotated[InstantOrDay, Query(alias="from", description=f"started (episodes) or sent "
                                                      f"(referrals) at or after; {INSTANT_OR_DAY}")] = None,
                 to: Annotated[InstantOrDay, Query(description=f"before; {INSTANT_OR_DAY} (the day included)")]
                 = None) -> dict[str, Any]:
    """The social-needs figures of the compliance report: screenings of the sdoh-screening-referral episodes
    (screened, positive, positive by domain) and the referrals' outcomes with the share that ended "got help"
    (of those with an outcome). Only episodes the user may read; who may: as /compliance."""
    start, end = report_period(engine, "sdoh-screening-referral", from_, to)
    figures = social_needs_figures(engine, user, start, end)
    return {"from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
            **figures.as_dict()}
