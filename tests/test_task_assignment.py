"""Who gets a task: lanes, Camunda Modeler attributes, spiff-arena properties and lane_owners;
claiming, releasing, assigning, holding, priorities, comments, worklist filters and counts."""

from __future__ import annotations

from tests.support import diagrams as d
from tests.support.api import ApiClient

CAMUNDA = 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn"'
SPIFF = 'xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core"'


def _with_namespace(xml: str, namespace: str) -> str:
    return xml.replace("<bpmn:definitions ", f"<bpmn:definitions {namespace} ", 1)


def camunda_task(pid: str, **attributes: str) -> str:
    attrs = " ".join(f'camunda:{k}="{v}"' for k, v in attributes.items())
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "s"), f'<bpmn:userTask id="review" name="Review labs" {attrs}/>',
        d.node("endEvent", "e"), d.flow("f1", "s", "review"), d.flow("f2", "review", "e")))
    return _with_namespace(xml, CAMUNDA)


def spiff_task(pid: str, **properties: str) -> str:
    props = "".join(f'<spiffworkflow:property name="{k}" value="{v}"/>' for k, v in properties.items())
    body = f"<bpmn:extensionElements><spiffworkflow:properties>{props}</spiffworkflow:properties>" \
           "</bpmn:extensionElements>"
    xml = d.definitions(d.process(
        pid, d.node("startEvent", "s"), d.node("userTask", "review", "Review labs", body=body),
        d.node("endEvent", "e"), d.flow("f1", "s", "review"), d.flow("f2", "review", "e")))
    return _with_namespace(xml, SPIFF)


def _first_task(api: ApiClient, user: str, xml: str, **start: object) -> dict:
    deployed = api.deploy(user, ("p.bpmn", xml))
    assert deployed.status_code in (200, 201), deployed.text
    key = deployed.json()["processes"][0]["key"]
    started = api.start(user, key, **start)
    assert started.status_code == 201, started.text
    return started.json()["open_tasks"][0]


def test_camunda_attributes_route_the_task_with_expressions_over_instance_data(api: ApiClient) -> None:
    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task(
        "cam", assignee="${patient.pcp}", candidateGroups="pharmacy, care-coordinator", priority="80"),
        data={"patient": {"pcp": "dr-lee"}})
    assert task["assignee"] == "dr-lee" and task["priority"] == 80
    assert task["candidate_groups"] == ["care-coordinator", "pharmacy"]


def test_spiff_properties_and_lane_owners_route_the_task(api: ApiClient) -> None:
    admin = api.user("admin")
    task = _first_task(api, admin, spiff_task("sp", candidateGroups="pharmacy", candidateUsers="sam"))
    assert (task["candidate_groups"], task["candidate_users"]) == (["pharmacy"], ["sam"])
    laned = _first_task(api, admin, d.linear_user_tasks("ln", "Call patient", lane="Care Coordinator"),
                        data={"lane_owners": {"Care Coordinator": ["ana", "raj"]}})
    assert laned["candidate_groups"] == ["care-coordinator"]
    assert laned["candidate_users"] == ["ana", "raj"]


def test_a_bad_assignment_expression_falls_back_to_the_lane(api: ApiClient) -> None:
    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("bad", assignee="${patient.pcp}", candidateGroups="pharmacy"))
    assert task["assignee"] is None and task["candidate_groups"] == ["pharmacy"]


def test_claim_release_assign(api: ApiClient) -> None:
    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("cl", candidateGroups="pharmacy"))
    ana = api.user("coordinator", "pharmacy", name="ana")
    raj = api.user("coordinator", "pharmacy", name="raj")
    outsider = api.user("coordinator", "social-work")
    boss = api.user("supervisor", "pharmacy", name="boss")
    url = f"/api/tasks/{task['id']}"  # who may take which action when: tests/test_rules.py
    assert api.post(f"{url}/claim", outsider).status_code == 404  # not offered to them: not shown either
    claimed = api.post(f"{url}/claim", ana).json()
    assert claimed["assignee"] == "ana" and "unclaim" in claimed["actions"]
    assert api.post(f"{url}/claim", raj).status_code == 409  # ana has it
    assert api.post(f"{url}/assign", boss, {"user": "nobody"}).status_code == 422
    assert api.post(f"{url}/assign", boss, {"user": "raj"}).json()["assignee"] == "raj"
    assert api.post(f"{url}/unclaim", raj).json()["assignee"] is None
    done = api.post(f"{url}/complete", ana, {"data": {}})  # completing claims it
    assert done.status_code == 200
    assert api.get(url, ana).json()["completed_by"] == "ana"


def test_hold_resume_priority_comments(api: ApiClient) -> None:
    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("hold", candidateGroups="pharmacy"))
    ana = api.user("coordinator", "pharmacy")
    boss = api.user("supervisor", "pharmacy")
    url = f"/api/tasks/{task['id']}"
    assert api.post(f"{url}/hold", ana, {}).status_code == 422  # a reason is required
    held = api.post(f"{url}/hold", ana, {"reason": "patient asked to call back Monday"}).json()
    assert (held["state"], held["actions"]) == ("on-hold", ["resume", "comment"])
    assert api.post(f"{url}/complete", ana, {"data": {}}).status_code == 409
    assert api.post(f"{url}/resume", ana, {"reason": "Monday"}).json()["state"] == "ready"
    assert api.post(f"{url}/priority", boss, {"priority": 90}).json()["priority"] == 90
    assert api.post(f"{url}/priority", boss, {"priority": 101}).status_code == 422
    assert api.post(f"{url}/comments", ana, {"text": "left voicemail 10:40"}).status_code == 201
    notes = api.get(f"{url}/comments", ana).json()
    assert [(n["author"], n["text"]) for n in notes] == [(ana, "left voicemail 10:40")]


def test_worklist_filters(api: ApiClient) -> None:
    admin = api.user("admin")
    api.deploy(admin, ("a.bpmn", camunda_task("wa", candidateGroups="pharmacy", priority="90")))
    api.deploy(admin, ("b.bpmn", d.linear_user_tasks("wb", "Call patient", lane="Care Coordinator")))
    pharm = [api.start(admin, "wa", patient_id="pat-1").json() for _ in range(2)]
    coord = api.start(admin, "wb", patient_id="pat-2", business_key="enc-77").json()
    ana = api.user("coordinator", "pharmacy", name="ana")

    def ids(user: str, **params: object) -> set[str]:
        response = api.get("/api/tasks", user, params=params)
        assert response.status_code == 200, response.text
        return {t["instance_id"] for t in response.json()["items"]}

    assert ids(ana, candidate="me") == {p["id"] for p in pharm}
    assert ids(admin, group="care-coordinator") == {coord["id"]}
    assert ids(admin, patient_id="pat-2") == {coord["id"]} == ids(admin, business_key="enc-77")
    assert ids(admin, priority=90) == {p["id"] for p in pharm}
    assert ids(admin, q="call") == {coord["id"]}
    api.post(f"/api/tasks/{pharm[0]['open_tasks'][0]['id']}/claim", ana)
    assert ids(ana, assignee="me") == {pharm[0]["id"]}
    assert ids(admin, unassigned=True) == {pharm[1]["id"], coord["id"]}
    by_priority = api.get("/api/tasks", admin, params={"sort": "priority"}).json()["items"]
    assert [t["priority"] for t in by_priority] == [90, 90, 50]
    counts = {(c["group"], c["state"]): c["count"] for c in api.get("/api/tasks/counts", admin).json()}
    assert counts == {("pharmacy", "ready"): 2, ("care-coordinator", "ready"): 1}


def test_drafts_and_delegation(api: ApiClient) -> None:
    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("dr", candidateGroups="pharmacy"))
    ana = api.user("coordinator", "pharmacy", name="ana")
    api.user("coordinator", "pharmacy", name="raj")
    url = f"/api/tasks/{task['id']}"
    saved = api.client.put(f"{url}/draft", headers=api.headers(ana), json={"data": {"note": "half done"}})
    assert saved.status_code == 200 and saved.json()["state"] == "in-progress"
    assert saved.json()["assignee"] == "ana" and saved.json()["draft"] == {"note": "half done"}
    assert api.get(f"{url}/form", ana).json()["data"] == {"note": "half done"}
    delegated = api.post(f"{url}/delegate", ana, {"user": "raj"}).json()
    assert (delegated["assignee"], delegated["owner"]) == ("raj", "ana")
    back = api.post(f"{url}/resolve", "raj").json()
    assert (back["assignee"], back["owner"]) == ("ana", None)
    assert api.post(f"{url}/complete", ana, {"data": {"note": "done"}}).status_code == 200


def test_tasks_no_one_can_pick_up_are_listed_as_unrouted(api: ApiClient) -> None:
    admin = api.user("admin")
    api.deploy(admin, ("a.bpmn", camunda_task("ur", candidateGroups="wound-care")))
    started = api.start(admin, "ur").json()
    task_id = started["open_tasks"][0]["id"]
    boss, outsider = api.user("supervisor", "care-coordinator"), api.user("coordinator", "care-coordinator")
    for user in (admin, boss):  # supervisors see the unrouted queue beyond their own groups, to route it
        unrouted = api.get("/api/tasks", user, params={"unrouted": True}).json()
        assert [t["instance_id"] for t in unrouted["items"]] == [started["id"]]
    assert api.get(f"/api/tasks/{task_id}", boss).status_code == 200
    assert api.get(f"/api/tasks/{task_id}", outsider).status_code == 404
    assert api.get("/api/tasks", outsider, params={"unrouted": True}).json()["items"] == []
    api.user("coordinator", "wound-care")  # the team gets its first member: the task is routed
    assert api.get("/api/tasks", admin, params={"unrouted": True}).json()["total"] == 0
    assert api.get(f"/api/tasks/{task_id}", boss).status_code == 404  # now the wound-care team's business


def test_a_supervisor_routes_an_unrouted_task_to_someone(api: ApiClient) -> None:
    admin = api.user("admin")
    api.deploy(admin, ("a.bpmn", camunda_task("ur2", candidateGroups="wound-care")))
    task_id = api.start(admin, "ur2").json()["open_tasks"][0]["id"]
    boss = api.user("supervisor", "care-coordinator")
    api.user("coordinator", "care-coordinator", name="ana")
    assigned = api.post(f"/api/tasks/{task_id}/assign", boss, {"user": "ana"})
    assert assigned.status_code == 200, assigned.text
    assert assigned.json()["assignee"] == "ana"


def test_spiff_form_schema_file_uploaded_beside_the_bpmn_validates_completion(api: ApiClient) -> None:
    import json

    admin = api.user("admin")
    xml = spiff_task("sf", formJsonSchemaFilename="review-form.json")
    form = {"type": "object", "required": ["a1c"], "properties": {"a1c": {"type": "number", "minimum": 3}}}
    missing = api.deploy(admin, ("sf.bpmn", xml))
    assert missing.status_code == 422 and "review-form.json" in missing.json()["errors"][0]["message"]
    bad_schema = api.deploy(admin, ("sf.bpmn", xml), ("review-form.json", '{"type": 5}'))
    assert bad_schema.status_code == 422
    deployed = api.deploy(admin, ("sf.bpmn", xml), ("review-form.json", json.dumps(form)))
    assert deployed.status_code == 201, deployed.text
    task = api.start(admin, "sf").json()["open_tasks"][0]
    assert api.get(f"/api/tasks/{task['id']}/form", admin).json()["schema"] == form
    wrong = api.post(f"/api/tasks/{task['id']}/complete", admin, {"data": {"a1c": 1}})
    assert wrong.status_code == 422 and wrong.json()["errors"][0]["field"] == "a1c"
    assert api.post(f"/api/tasks/{task['id']}/complete", admin, {"data": {"a1c": 7.2}}).status_code == 200


def test_due_date_filters(api: ApiClient) -> None:
    from carepath.engine.persistence.tables import Task

    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("due", candidateGroups="pharmacy"))
    with api.engine.db.write_sessions() as session:  # due dates come from the diagram in a later issue
        row = session.get(Task, task["id"])
        assert row is not None
        row.due_date = api.engine.now()
        session.commit()
    api.engine.clock.advance(hours=1)  # type: ignore[attr-defined]
    assert api.get("/api/tasks", admin, params={"overdue": True}).json()["total"] == 1
    assert api.get("/api/tasks", admin, params={"due_before": "2000-01-01T00:00:00Z"}).json()["total"] == 0
    assert api.get("/api/tasks", admin, params={"due_before": "2030-01-01T00:00:00"}).status_code == 422


def test_worklist_totals_stop_at_the_cap_unless_asked_for_exactly(api: ApiClient, monkeypatch) -> None:
    from carepath.engine import queries
    monkeypatch.setattr(queries, "COUNT_CAP", 3)
    admin = api.user("admin")
    api.deploy(admin, ("c.bpmn", d.linear_user_tasks("cap", "Call patient", lane="Care Coordinator")))
    for _ in range(5):
        api.start(admin, "cap")

    def page(**params: object) -> tuple[int, bool, int]:
        body = api.get("/api/tasks", admin, params=params).json()
        return body["total"], body["total_exact"], len(body["items"])

    assert page(limit=2) == (3, False, 2)  # "3 or more"
    assert page(limit=2, exact_total=True) == (5, True, 2)
    assert page(limit=2, offset=2) == (4, False, 2)  # counted to the end of the page asked for, and beyond
    assert page(limit=2, offset=4) == (5, True, 1)
    every = [t["id"] for t in api.get("/api/tasks", admin, params={"limit": 5, "exact_total": True}).json()["items"]]
    paged = [t["id"] for offset in (0, 2, 4)
             for t in api.get("/api/tasks", admin, params={"limit": 2, "offset": offset}).json()["items"]]
    assert paged == every and len(set(every)) == 5  # pages follow the sort order, none missing or repeated
    listed = api.get("/api/instances", admin, params={"limit": 1}).json()
    assert (listed["total"], listed["total_exact"]) == (3, False)


def test_a_task_is_visible_through_its_audience_to_exactly_its_candidates(api: ApiClient) -> None:
    admin = api.user("admin")
    api.deploy(admin, ("v.bpmn", camunda_task("vis", candidateGroups="pharmacy", candidateUsers="sam")))
    api.deploy(admin, ("o.bpmn", d.linear_user_tasks("open", "Anyone")))  # no lane, no candidates: everyone
    offered = api.start(admin, "vis").json()["open_tasks"][0]["id"]
    everyone = api.start(admin, "open").json()["open_tasks"][0]["id"]
    seen = {name: {t["id"] for t in api.get("/api/tasks", api.user("coordinator", *groups, name=name)).json()["items"]}
            for name, groups in {"sam": (), "pia": ("pharmacy",), "cy": ("care-coordinator",)}.items()}
    assert seen == {"sam": {offered, everyone}, "pia": {offered, everyone}, "cy": {everyone}}
    claimable = api.get("/api/tasks", api.user("coordinator", name="sam2"), params={"candidate": "me"}).json()
    assert claimable["items"] == []  # "everyone" tasks are visible, not offered by name


def test_a_task_assigned_to_one_person_is_nobody_elses(api: ApiClient) -> None:
    """Assigned by the diagram with no candidates: not offered to everyone (lists and actions agree)."""
    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("own", assignee="dr-lee"))
    api.user("coordinator", name="dr-lee")
    other = api.user("coordinator", "care-coordinator")
    assert api.get(f"/api/tasks/{task['id']}", other).status_code == 404
    assert api.post(f"/api/tasks/{task['id']}/hold", other, {"reason": "x"}).status_code == 404
    assert api.post(f"/api/tasks/{task['id']}/complete", other, {"data": {}}).status_code == 404
    assert api.get("/api/tasks", other).json()["items"] == []
    assert api.post(f"/api/tasks/{task['id']}/hold", "dr-lee", {"reason": "at lunch"}).status_code == 200


def test_dashboard_counts_follow_every_change_and_survive_folding(api: ApiClient) -> None:
    """The counts come from deltas the database's triggers append; every way a task opens, moves or
    closes must show, and folding the deltas (the scheduler's sweep) must not change the answer."""
    from carepath.engine.usecases.projections import fold_task_counts

    admin = api.user("admin")
    api.deploy(admin, ("p.bpmn", camunda_task("cp", candidateGroups="pharmacy, nursing")),
               ("u.bpmn", camunda_task("cu", candidateUsers="dr-lee")),
               ("l.bpmn", d.linear_user_tasks("cl", "Call patient", "Book visit", lane="Care Coordinator")))
    ana = api.user("coordinator", "pharmacy", name="ana")
    both = [api.start(admin, "cp").json()["open_tasks"][0]["id"] for _ in range(3)]
    api.start(admin, "cu")
    calls = [api.start(admin, "cl").json() for _ in range(2)]

    def counts() -> dict[tuple[str | None, str], int]:
        rows = api.get("/api/tasks/counts", ana).json()
        assert all(row["count"] > 0 for row in rows)
        return {(row["group"], row["state"]): row["count"] for row in rows}

    assert counts() == {("pharmacy", "ready"): 3, ("nursing", "ready"): 3, ("care-coordinator", "ready"): 2,
                        (None, "ready"): 1}
    assert api.post(f"/api/tasks/{both[0]}/hold", ana, {"reason": "waiting on the pharmacy"}).status_code == 200
    assert api.post(f"/api/tasks/{both[1]}/complete", ana, {"data": {}}).status_code == 200
    assert api.post(f"/api/instances/{calls[0]['id']}/cancel", admin, {"reason": "readmitted"}).status_code == 200
    call = calls[1]["open_tasks"][0]["id"]
    assert api.post(f"/api/tasks/{call}/complete", admin, {"data": {}}).status_code == 200  # next task opens
    expected = {("pharmacy", "ready"): 1, ("pharmacy", "on-hold"): 1, ("nursing", "ready"): 1,
                ("nursing", "on-hold"): 1, ("care-coordinator", "ready"): 1, (None, "ready"): 1}
    assert counts() == expected
    assert fold_task_counts(api.engine) > len(expected)
    assert counts() == expected
    assert api.post(f"/api/tasks/{both[0]}/resume", ana, {"reason": "stock arrived"}).status_code == 200
    assert counts() == {**{k: v for k, v in expected.items() if k[1] != "on-hold"},
                        ("pharmacy", "ready"): 2, ("nursing", "ready"): 2}
    assert fold_task_counts(api.engine) == 6 + 4  # the folded rows plus the resume's four deltas


def test_a_form_field_constraint_that_is_not_a_number_is_refused_at_deploy(api: ApiClient) -> None:
    fields = ('<bpmn:extensionElements><camunda:formData><camunda:formField id="age" type="long">'
              '<camunda:validation><camunda:constraint name="min" config="ten"/></camunda:validation>'
              '</camunda:formField></camunda:formData></bpmn:extensionElements>')
    xml = _with_namespace(d.definitions(d.process(
        "fm", d.node("startEvent", "s"), d.node("userTask", "ask", "Ask age", body=fields), d.node("endEvent", "e"),
        d.flow("f1", "s", "ask"), d.flow("f2", "ask", "e"))), CAMUNDA)
    refused = api.deploy(api.user("admin"), ("fm.bpmn", xml))
    assert refused.status_code == 422, refused.text
    problem = refused.json()["errors"][0]
    assert problem["element_id"] == "ask" and "'age'" in problem["message"] and "ten" in problem["message"]


def test_a_lane_label_wrapped_onto_two_lines_routes_like_the_one_line_label() -> None:
    from carepath.engine.identity import group_for_lane

    assert group_for_lane("Care\nCoordinator") == group_for_lane("Care Coordinator") == "care-coordinator"
    mapping = {"Care Coordinator": "cc-team"}
    assert group_for_lane("Care \n Coordinator", mapping) == group_for_lane("Care Coordinator", mapping) == "cc-team"


def test_a_priority_outside_0_to_100_is_refused_at_deploy(api: ApiClient) -> None:
    admin = api.user("admin")
    for bad in ("101", "high", "-5"):
        refused = api.deploy(admin, ("p.bpmn", camunda_task("pr", priority=bad)))
        assert refused.status_code == 422 and "0 to 100" in refused.json()["errors"][0]["message"], bad
    assert api.deploy(admin, ("p.bpmn", camunda_task("pr", priority="${urgency}"))).status_code == 201


def test_every_history_entry_of_an_instance_names_its_pathway_version(api: ApiClient) -> None:
    from sqlalchemy import select

    from carepath.engine.persistence.tables import Event, Instance

    admin = api.user("admin")
    task = _first_task(api, admin, camunda_task("pv", candidateGroups="pharmacy"))
    ana = api.user("coordinator", "pharmacy", name="ana")
    boss = api.user("supervisor", "pharmacy")
    url = f"/api/tasks/{task['id']}"
    for action, user, body in (("claim", ana, None), ("hold", ana, {"reason": "waiting"}),
                               ("resume", ana, {"reason": "back"}), ("priority", boss, {"priority": 80}),
                               ("comments", ana, {"text": "left voicemail"}), ("complete", ana, {"data": {}})):
        assert api.post(f"{url}/{action}", user, body).status_code in (200, 201), action
    with api.engine.db.read() as session:
        version = session.scalar(select(Instance.pathway_version_id).where(Instance.id == task["instance_id"]))
        rows = session.execute(select(Event.type, Event.pathway_version_id).where(
            Event.instance_id == task["instance_id"])).all()
    assert len(rows) > 6 and {v for _, v in rows} == {version}, [r for r in rows if r[1] != version]
