"""Writing the changed instance rows of a batch in one statement instead of one each.

The ORM writes a row with a version counter (`instances.lock_version`) alone, to check the count of that
row. A batch of timers changes up to a batch's worth of instances, all locked by its claim: `write_instances`
sends their UPDATEs as one executemany (one round trip in psycopg's pipeline), with the same version check
and increment the ORM makes, then marks the objects as written, so that the flush at commit leaves them be.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any, cast

from sqlalchemy import Table, bindparam, inspect, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.exc import StaleDataError

from ..persistence.tables import Instance
from ..persistence.unit_of_work import UnitOfWork


def write_instances(uow: UnitOfWork, instances: Iterable[Instance]) -> None:
    """UPDATE the changed ones among `instances`: one executemany per set of changed columns (one set,
    in a batch of timers of one kind of change)."""
    table = cast(Table, Instance.__table__)
    groups: dict[tuple[str, ...], list[tuple[Instance, dict[str, Any]]]] = defaultdict(list)
    for instance in instances:
        state = inspect(instance)
        changed = {prop.key: state.attrs[prop.key].value for prop in inspect(Instance).column_attrs
                   if state.attrs[prop.key].history.has_changes()}
        if changed:
            groups[tuple(sorted(changed))].append((instance, changed))
    for keys, rows in groups.items():
        columns = {key: inspect(Instance).column_attrs[key].columns[0] for key in keys}
        statement = (update(table).where(table.c.id == bindparam("row_id"),
                                         table.c.lock_version == bindparam("row_version"))
                     .values({column: bindparam(f"new_{key}", type_=column.type) for key, column in columns.items()}
                             | {table.c.lock_version: table.c.lock_version + 1}))
        params = [{"row_id": instance.id, "row_version": instance.lock_version,
                   **{f"new_{key}": value for key, value in changed.items()}} for instance, changed in rows]
        written = uow.session.connection().execute(statement, params).rowcount
        if written != len(params):  # as the ORM's own check: someone changed one of them meanwhile
            raise StaleDataError(f"{len(params) - written} of {len(params)} instance rows changed meanwhile")
        for instance, changed in rows:
            for key, value in changed.items():
                set_committed_value(instance, key, value)
            set_committed_value(instance, "lock_version", instance.lock_version + 1)
