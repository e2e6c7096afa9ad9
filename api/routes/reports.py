"""/api/reports: deadline compliance per declared quality measure, as JSON, CSV or an SVG bar chart."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response

from carepath.engine.usecases.periods import report_period
from carepath.engine.usecases.reports import compliance_report, misses_csv, report_csv, report_svg
from carepath.engine.usecases.sdoh_figures import social_needs_figures

from ..attachments import content_disposition
from ..deps import CurrentUser, EngineDep
from ..params import INSTANT_OR_DAY, InstantOrDay
from ..schemas import ERROR_RESPONSES, errors

router = APIRouter(prefix="/api/reports", tags=["reports"], responses=ERROR_RESPONSES)


@router.get("/compliance", responses={200: {"content": {"application/json": {}, "text/csv": {}, "image/svg+xml": {}}},
                                       **errors(404, 422)})
def compliance(engine: EngineDep, user: CurrentUser, pathway: str | None = None,
               from_: Annotated[InstantOrDay, Query(alias="from", description=f"clock started at or after; "
                                                                             f"{INSTANT_OR_DAY}")] = None,
               to: Annotated[InstantOrDay, Query(description=f"clock started before; {INSTANT_OR_DAY} (the day "
                                                             "included)")] = None,
               group: Annotated[str | None, Query(description="the measures whose task was offered to this group "
                                                            "(a team's own deadlines)")] = None,
               format: Literal["json", "csv", "svg"] = "json",
               lines: Annotated[Literal["measures", "misses"], Query(
                   description="CSV only: a line per measure, or a line per miss")] = "measures") -> Any:
    """For each measure the pathways declare: episodes decided (denominator), met, rate, median days to
    meet it, and every miss with its patient, the task it waited for, who held it and the groups it was
    offered to; open, excluded and not-applicable episodes are counted beside it. Only episodes the user
    may read. Auditors, admins, supervisors and clinical leads; a pathway never deployed: 404."""
    from_, to = report_period(engine, pathway, from_, to)
    rows = compliance_report(engine, user, pathway=pathway, start=from_, end=to, group=group)
    if format == "csv":
        body, name = (misses_csv(rows), "misses") if lines == "misses" else (report_csv(rows), "compliance")
        return Response(body, media_type="text/csv",
                        headers={"Content-Disposition": content_disposition("attachment", f"{name}.csv")})
    if format == "svg":
        return Response(report_svg(rows), media_type="image/svg+xml")
    # Already plain JSON values (as FastAPI would encode them): skip its per-value encoder, which costs
    # more than the report itself when a year lists thousands of misses.
    return JSONResponse({"pathway": pathway, "from": from_.isoformat() if from_ else None,
                         "to": to.isoformat() if to else None, "group": group,
                         "measures": [r.as_dict() for r in rows]})


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
