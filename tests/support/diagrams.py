"""Small BPMN diagrams built in code for tests (plain BPMN 2.0, no editor extensions)."""

from __future__ import annotations

from xml.sax.saxutils import escape

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"


def definitions(*processes: str, messages: tuple[str, ...] = (), extra: str = "") -> str:
    msgs = "".join(f'<bpmn:message id="Msg_{m}" name="{m}"/>' for m in messages)
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions xmlns:bpmn="{BPMN_NS}" '
            'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" id="Defs" '
            f'targetNamespace="http://carepath.test">{msgs}{extra}{"".join(processes)}</bpmn:definitions>')


def process(pid: str, *elements: str, executable: bool = True, lanes: dict[str, list[str]] | None = None) -> str:
    lane_xml = ""
    if lanes:
        lane_xml = '<bpmn:laneSet id="LaneSet_1">' + "".join(
            f'<bpmn:lane id="Lane_{i}" name="{escape(name)}">'
            + "".join(f"<bpmn:flowNodeRef>{ref}</bpmn:flowNodeRef>" for ref in refs) + "</bpmn:lane>"
            for i, (name, refs) in enumerate(lanes.items())) + "</bpmn:laneSet>"
    return (f'<bpmn:process id="{pid}" isExecutable="{str(executable).lower()}">{lane_xml}'
            + "".join(elements) + "</bpmn:process>")


def flow(fid: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
            f'<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression">{escape(condition)}'
            "</bpmn:conditionExpression></bpmn:sequenceFlow>")


def node(tag: str, nid: str, name: str | None = None, body: str = "", **attrs: str) -> str:
    extra = "".join(f' {k}="{escape(v)}"' for k, v in attrs.items())
    label = f' name="{escape(name)}"' if name else ""
    return f"<bpmn:{tag} id=\"{nid}\"{label}{extra}>{body}</bpmn:{tag}>"


def timer(kind: str, value: str) -> str:
    return (f'<bpmn:timerEventDefinition><bpmn:{kind} xsi:type="bpmn:tFormalExpression">{escape(value)}'
            f"</bpmn:{kind}></bpmn:timerEventDefinition>")


def message_ref(name: str) -> str:
    return f'<bpmn:messageEventDefinition messageRef="Msg_{name}"/>'


def linear_user_tasks(pid: str, *names: str, lane: str | None = None) -> str:
    """start -> user task(s) -> end."""
    ids = [f"task_{i}" for i in range(len(names))]
    chain = ["start", *ids, "end"]
    elements = [node("startEvent", "start")]
    elements += [node("userTask", tid, name) for tid, name in zip(ids, names, strict=True)]
    elements.append(node("endEvent", "end"))
    elements += [flow(f"f{i}", a, b) for i, (a, b) in enumerate(zip(chain, chain[1:], strict=False))]
    return definitions(process(pid, *elements, lanes={lane: ids} if lane else None))


def script_then_task(pid: str, script: str, task_name: str = "Review") -> str:
    return definitions(process(
        pid, node("startEvent", "start"),
        node("scriptTask", "script", "Compute", body=f"<bpmn:script>{escape(script)}</bpmn:script>"),
        node("userTask", "review", task_name), node("endEvent", "end"),
        flow("f1", "start", "script"), flow("f2", "script", "review"), flow("f3", "review", "end")))


def task_then_message(pid: str, message: str, correlation_expr: str | None = None) -> str:
    """start -> user task "Call patient" -> wait for message -> user task "Close" -> end."""
    correlation = ""
    if correlation_expr:
        correlation = (
            f'<bpmn:correlationProperty id="cp_{message}" name="cp_{message}">'
            f'<bpmn:correlationPropertyRetrievalExpression messageRef="Msg_{message}">'
            f"<bpmn:messagePath>{escape(correlation_expr)}</bpmn:messagePath>"
            "</bpmn:correlationPropertyRetrievalExpression></bpmn:correlationProperty>")
    return definitions(process(
        pid, node("startEvent", "start"), node("userTask", "call", "Call patient"),
        node("intermediateCatchEvent", "wait", "Report received", body=message_ref(message)),
        node("userTask", "close", "Close"), node("endEvent", "end"),
        flow("f1", "start", "call"), flow("f2", "call", "wait"), flow("f3", "wait", "close"),
        flow("f4", "close", "end")), messages=(message,), extra=correlation)


def message_start(pid: str, message: str) -> str:
    return definitions(process(
        pid, node("startEvent", "start", body=message_ref(message)), node("userTask", "triage", "Triage"),
        node("endEvent", "end"), flow("f1", "start", "triage"), flow("f2", "triage", "end")),
        messages=(message,))


def boundary_timers(pid: str, *, reminder: str = "P1D", escalation: str = "P2D",
                    reminder_kind: str = "timeDuration", escalation_kind: str = "timeDuration") -> str:
    """"Call patient" with a non-interrupting reminder timer and an interrupting escalation timer."""
    return definitions(process(
        pid, node("startEvent", "start"), node("userTask", "call", "Call patient"),
        node("boundaryEvent", "remind", "Reminder due", body=timer(reminder_kind, reminder),
             attachedToRef="call", cancelActivity="false"),
        node("userTask", "reminder", "Reminder"),
        node("boundaryEvent", "escalate", "Escalate", body=timer(escalation_kind, escalation), attachedToRef="call"),
        node("userTask", "escalation", "Escalation"),
        node("endEvent", "end"), node("endEvent", "end_r"), node("endEvent", "end_e"),
        flow("f1", "start", "call"), flow("f2", "call", "end"), flow("f3", "remind", "reminder"),
        flow("f4", "reminder", "end_r"), flow("f5", "escalate", "escalation"), flow("f6", "escalation", "end_e")))


def gateway_on(pid: str, condition: str) -> str:
    return definitions(process(
        pid, node("startEvent", "start"), node("userTask", "assess", "Assess"),
        node("exclusiveGateway", "gw", "High risk?", default="f_low"),
        node("userTask", "urgent", "Urgent visit"), node("userTask", "routine", "Routine visit"),
        node("endEvent", "end1"), node("endEvent", "end2"),
        flow("f1", "start", "assess"), flow("f2", "assess", "gw"), flow("f_high", "gw", "urgent", condition),
        flow("f_low", "gw", "routine"), flow("f3", "urgent", "end1"), flow("f4", "routine", "end2")))


def call_activity(pid: str, called: str) -> str:
    return definitions(process(
        pid, node("startEvent", "start"), node("callActivity", "call", "Run sub-pathway", calledElement=called),
        node("userTask", "after", "After call"), node("endEvent", "end"),
        flow("f1", "start", "call"), flow("f2", "call", "after"), flow("f3", "after", "end")))


def dose_per_weight(pid: str) -> str:
    """"Enter dose" -> a script dividing dose by weight (an incident when weight is 0) -> "Review"."""
    return definitions(process(
        pid, node("startEvent", "start"), node("userTask", "enter", "Enter dose"),
        node("scriptTask", "compute", "Compute", body="<bpmn:script>per_kg = dose / weight</bpmn:script>"),
        node("userTask", "review", "Review"), node("endEvent", "end"),
        flow("f1", "start", "enter"), flow("f2", "enter", "compute"), flow("f3", "compute", "review"),
        flow("f4", "review", "end")))


def team_call(pid: str = "cohort") -> str:
    """start -> "Call patient", offered to the group named by the instance variable `team` -> end."""
    xml = definitions(process(
        pid, node("startEvent", "s"),
        '<bpmn:userTask id="call" name="Call patient" camunda:candidateGroups="${team}"/>',
        node("endEvent", "e"), flow("f1", "s", "call"), flow("f2", "call", "e")))
    return xml.replace("<bpmn:definitions ", '<bpmn:definitions xmlns:camunda="http://camunda.org/schema/1.0/bpmn" ', 1)


# The measure team_call's cohorts are checked against: the call reached within 2 business days of the visit.
CALL_MEASURE = {"id": "call-2bd", "name": "Patient reached within 2 business days", "source": "local policy (test)",
                "clock_starts": {"variable": "visit_date", "event": "ED visit"},
                "met_by": {"task": "call", "when": "reached == True", "event": "patient reached"},
                "deadline": "P2BD after visit_date end of day"}
# A measure met by a variable, beside CALL_MEASURE in the cohorts: a follow-up within 14 days of the visit.
VISIT_MEASURE = {"id": "visit-14", "name": "Follow-up visit within 14 days", "source": "local policy (test)",
                 "applies_when": "not declined",
                 "clock_starts": {"variable": "visit_date", "event": "ED visit"},
                 "met_by": {"variable": "follow_up_date", "event": "follow-up visit"},
                 "deadline": "P14D after visit_date end of day"}
