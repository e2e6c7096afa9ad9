"""A supervisor in a real browser: signs in, opens the team dashboard, follows a number to its list, opens the
unrouted queue and the notifications inbox and marks one notification read; each screen passes an axe-core
scan with no serious or critical violation, and a script in a patient id stays text."""

from __future__ import annotations

from datetime import timedelta

import pytest

from carepath.engine.application import CarePath
from carepath.engine.clock import ManualClock
from carepath.engine.definitions import SourceFile
from carepath.engine.identity import SYSTEM
from carepath.engine.persistence.tables import Task
from carepath.engine.usecases.deploy import deploy_pathways
from carepath.engine.usecases.instances import start_instance
from carepath.engine.usecases.tasks import set_due_date
from carepath.engine.usecases.timers import fire_due_timers
from tests.support import diagrams as d
from tests.support.web import web_user

from .conftest import Visit

pytestmark = pytest.mark.browser
PATIENT = '<script>document.title="owned"</script>pat-9'




def _start(engine: CarePath, key: str, lane: str) -> str:
    deploy_pathways(engine, SYSTEM, [SourceFile(f"{key}.bpmn", d.linear_user_tasks(key, "Call patient",
                                                                                    lane=lane).encode())])
    [task] = start_instance(engine, SYSTEM, key, business_key=f"enc-{key}", patient_id=PATIENT).open_tasks
    return task.id


def test_a_supervisor_reviews_the_team_reassigns_and_reads_the_unrouted_queue_and_the_inbox(
        engine: CarePath, clock: ManualClock, visit: Visit) -> None:
    web_user(engine, "sue", "supervisor", "care-coordinator")
    web_user(engine, "cam", "coordinator", "care-coordinator")
    late = _start(engine, "fu", "Care Coordinator")
    unrouted = _start(engine, "diet", "Dietitian")  # nobody is in that group
    set_due_date(engine, SYSTEM, late, (clock() + timedelta(hours=1)).isoformat(), "urgent")
    clock.advance(hours=2)
    fire_due_timers(engine)  # a reminder and an escalation
    page = visit.sign_in("sue", "/app/team")
    row = page.locator("tr[data-group='care-coordinator']")
    assert row.locator("td.overdue").inner_text().split()[0] == "1"
    assert page.locator(".unread-count").inner_text() == "2"
    assert visit.serious("team") == []

    row.locator("td.overdue a").click()
    page.wait_for_url("**/app/team/tasks?group=care-coordinator&overdue=true")
    task_row = page.locator(f"tr[data-task-id='{late}']")
    assert PATIENT in task_row.inner_text() and page.title() != "owned"
    assert task_row.get_by_label("Assign to").locator("option").all_inner_texts() == ["Choose a person", "cam", "sue"]
    assert visit.serious("team-tasks") == []
    # The supervisor reassigns the late task to cam through the row's form (the tasks area's action route).
    task_row.get_by_label("Assign to").select_option("cam")
    task_row.get_by_role("button", name="Assign").click()
    page.wait_for_url("**/app/team/tasks?group=care-coordinator&overdue=true")
    assert page.locator(f"tr[data-task-id='{late}'] td.holder").inner_text() == "cam"
    # Said once, in the page's status region (role=status), and passing axe with it shown.
    assert page.get_by_role("status").inner_text() == "Assigned 'Call patient' to cam."
    assert visit.serious() == []
    with engine.db.read() as session:
        assert session.get(Task, late).assignee == "cam"  # the engine's row, not only the page

    page.get_by_role("link", name="Back to the team dashboard").click()
    page.get_by_role("link", name="Unrouted queue: tasks nobody can pick up").click()
    page.wait_for_url("**/app/team/unrouted")
    assert page.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.taskId)") == [unrouted]
    assert visit.serious("team-unrouted") == []

    page.get_by_role("link", name="Notifications", exact=True).click()
    page.wait_for_url("**/app/notifications")
    assert page.locator("li.notification.unread").count() == 2
    assert visit.serious("notifications") == []
    page.locator("li.notification").first.get_by_role("button", name="Mark as read").click()
    page.wait_for_url("**/app/notifications")
    assert page.locator(".unread-count").inner_text() == "1"
    assert page.locator("li.notification.unread").count() == 1
    assert visit.serious() == []
    assert visit.outside == [] and visit.console_errors == []
