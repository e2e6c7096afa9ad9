"""Each user's worklist choice (quick view, sort, patient or episode searched), kept on the server: the
worklist opens as they left it, in any browser and after signing in again; "reset" restores the default.

Values are checked against the engine's own lists (engine/worklist.py) before anything is stored, so a
stored choice is always one the worklist can draw.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ..application import CarePath
from ..errors import NotFound, Problem, ValidationFailed
from ..identity import Principal
from ..persistence.tables import User, WorklistSetting
from ..persistence.unit_of_work import UnitOfWork
from ..worklist import DEFAULT_SORT, DEFAULT_VIEW, MAX_SEARCH, SORTS, VIEWS


@dataclass(frozen=True)
class WorklistChoice:
    view: str = DEFAULT_VIEW
    sort: str = DEFAULT_SORT
    search: str | None = None  # a patient id or an episode's business key


def checked_choice(view: str, sort: str, search: str | None) -> WorklistChoice:
    """The choice, tidied (search stripped, empty = none), or ValidationFailed naming each bad field."""
    problems = []
    if view not in VIEWS:
        problems.append(Problem(f"there is no worklist view '{view[:40]}'; choose one of: {', '.join(VIEWS)}",
                                field="view"))
    if sort not in SORTS:
        problems.append(Problem(f"the worklist cannot be sorted by '{sort[:40]}'; choose one of: {', '.join(SORTS)}",
                                field="sort"))
    search = (search or "").strip() or None
    if search is not None and (len(search) > MAX_SEARCH or "\x00" in search):
        problems.append(Problem(f"a patient id or business key has at most {MAX_SEARCH} characters", field="q"))
    if problems:
        raise ValidationFailed("the worklist choice is not possible", problems)
    return WorklistChoice(view, sort, search)


def worklist_choice(app: CarePath, principal: Principal) -> WorklistChoice:
    """The user's saved choice, or the default when they never chose (or it names a view since retired)."""
    with app.db.read() as session:
        return saved_choice(session, principal)


def saved_choice(session: Session, principal: Principal) -> WorklistChoice:
    """`worklist_choice` inside a read the caller holds (the worklist page reads it with its rows)."""
    row = session.execute(select(WorklistSetting.view, WorklistSetting.sort, WorklistSetting.search)
                          .join(User, User.id == WorklistSetting.user_id)
                          .where(User.name == principal.name)).first()
    if row is None or row.view not in VIEWS or row.sort not in SORTS:
        return WorklistChoice()
    return WorklistChoice(row.view, row.sort, row.search)


def save_worklist_choice(app: CarePath, principal: Principal, choice: WorklistChoice) -> WorklistChoice:
    """Store the user's choice (checked first: ValidationFailed names the bad field); returns it tidied."""
    choice = checked_choice(choice.view, choice.sort, choice.search)
    try:
        _store(app, principal, choice)
    except IntegrityError:  # two tabs saved the first choice at once: the row exists now, update it
        _store(app, principal, choice)
    return choice


def _store(app: CarePath, principal: Principal, choice: WorklistChoice) -> None:
    with UnitOfWork(app) as uow:
        user_id = _user_id(uow, principal)
        row = uow.session.get(WorklistSetting, user_id)
        if row is None:
            row = WorklistSetting(user_id=user_id)
            uow.session.add(row)
        row.view, row.sort, row.search, row.updated_at = choice.view, choice.sort, choice.search, app.now()
        uow.commit()


def reset_worklist_choice(app: CarePath, principal: Principal) -> WorklistChoice:
    """Forget the user's choice: the worklist opens with the default view and sort again."""
    with UnitOfWork(app) as uow:
        uow.session.execute(delete(WorklistSetting).where(WorklistSetting.user_id == _user_id(uow, principal)))
        uow.commit()
    return WorklistChoice()


def _user_id(uow: UnitOfWork, principal: Principal) -> int:
    user_id = uow.session.scalar(select(User.id).where(User.name == principal.name))
    if user_id is None:
        raise NotFound(f"user {principal.name} does not exist")
    return user_id
