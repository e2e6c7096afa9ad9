"""The social-needs figures of the compliance report (`GET /api/reports/social-needs`): what the issue asks
beside the per-episode measures — screening counts (screened, positive, positive by domain) of the
`sdoh-screening-referral` episodes, and the referrals' outcomes with the share that ended "got help".

SQL on the projection tables: `instances` (its `data` projection's `screen_result` and `positive_domains`,
no workflow loaded) and `referrals`. Only the episodes the reader may read; who may read: as the compliance
report (auditors, admins, supervisors, clinical leads). Episodes count by when they started in the period;
referrals by when they were sent.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ..application import CarePath
from ..identity import Principal, instance_scope, require_role
from ..persistence.referral_tables import Referral
from ..persistence.tables import Instance
from ..queries import instances_visible_to
from ..sdoh.instruments import DOMAINS
from .reports import REPORT_ROLES

PATHWAY = "sdoh-screening-referral"
GOT_HELP = "got-help"


@dataclass(frozen=True)
class SocialNeedsFigures:
    screened: int  # episodes with a scored screening
    positive: int
    positive_by_domain: dict[str, int]
    referrals_sent: int
    referrals_closed: int  # with an outcome
    outcomes: dict[str, int] = field(default_factory=dict)

    @property
    def got_help_share(self) -> float | None:
        """Of the referrals whose loop closed, the share that ended "got help" (None: none closed)."""
        if not self.referrals_closed:
            return None
        return round(self.outcomes.get(GOT_HELP, 0) / self.referrals_closed, 4)

    def as_dict(self) -> dict[str, Any]:
        return {"screened": self.screened, "positive": self.positive, "positive_by_domain": self.positive_by_domain,
                "referrals_sent": self.referrals_sent, "referrals_closed": self.referrals_closed,
                "outcomes": self.outcomes, "got_help_share": self.got_help_share}


def social_needs_figures(app: CarePath, principal: Principal, start: datetime | None,
                         end: datetime | None) -> SocialNeedsFigures:
    require_role(principal, *REPORT_ROLES, action="Reading compliance reports")
    with app.db.read() as session:
        episodes = _episodes(session, principal, start, end)
        results = session.execute(select(Instance.data["screen_result"].as_string(),
                                         Instance.data["positive_domains"])
                                  .where(Instance.id.in_(episodes.scalar_subquery()))).all()
        outcomes = session.execute(select(Referral.outcome, func.count())
                                   .where(Referral.instance_id.in_(_episodes(session, principal, None, None)
                                                                   .scalar_subquery()),
                                          *_period(Referral.created_at, start, end))
                                   .group_by(Referral.outcome)).all()
    by_domain: Counter[str] = Counter()
    for result, domains in results:
        if result == "positive" and isinstance(domains, list):
            by_domain.update(d for d in domains if d in DOMAINS)
    closed = {outcome: count for outcome, count in outcomes if outcome is not None}
    return SocialNeedsFigures(
        screened=sum(1 for result, _ in results if result in ("positive", "negative")),
        positive=sum(1 for result, _ in results if result == "positive"),
        positive_by_domain={d: by_domain.get(d, 0) for d in DOMAINS},
        referrals_sent=sum(count for _, count in outcomes), referrals_closed=sum(closed.values()),
        outcomes=dict(sorted(closed.items())))


def _episodes(session: Session, principal: Principal, start: datetime | None, end: datetime | None) -> Any:
    query = select(Instance.id).where(Instance.pathway_key == PATHWAY, *_period(Instance.created_at, start, end))
    scope = instance_scope(principal)
    return query if scope is None else query.where(instances_visible_to(session, *scope))


def _period(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    return [c for c in ((column >= start) if start else None, (column < end) if end else None) if c is not None]
