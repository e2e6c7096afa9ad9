"""Small BPMN and DMN documents built in code for the importer's tests."""

from __future__ import annotations

from xml.sax.saxutils import escape, quoteattr

from carepath.engine.definitions import SourceFile

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
DMN13_NS = "https://www.omg.org/spec/DMN/20191111/MODEL/"


def definitions(*content: str, namespaces: str = "", target_namespace: bool = True) -> str:
    """A bpmn:definitions root; every element goes on its own line so tests can predict line numbers."""
    target = ' targetNamespace="http://carepath.test"' if target_namespace else ""
    return ('<?xml version="1.0" encoding="UTF-8"?>\n'
            f'<bpmn:definitions xmlns:bpmn="{BPMN_NS}" xmlns:camunda="{CAMUNDA_NS}" '
            f'xmlns:spiffworkflow="{SPIFF_NS}" id="Defs"{target}{namespaces}>\n'
            + "\n".join(content) + "\n</bpmn:definitions>\n")


def process(pid: str, *elements: str, executable: str | None = "true", name: str | None = None,
            extra: str = "") -> str:
    flag = f' isExecutable="{executable}"' if executable is not None else ""
    label = f" name={quoteattr(name)}" if name else ""
    return f'<bpmn:process id="{pid}"{label}{flag}{extra}>\n' + "\n".join(elements) + "\n</bpmn:process>"


def element(tag: str, eid: str, name: str | None = None, body: str = "", **attributes: str) -> str:
    label = f" name={quoteattr(name)}" if name else ""
    extra = "".join(f" {key.replace('__', ':')}={quoteattr(value)}" for key, value in attributes.items())
    return f'<bpmn:{tag} id="{eid}"{label}{extra}>{body}</bpmn:{tag}>'


def flow(fid: str, source: str, target: str, condition: str | None = None) -> str:
    if condition is None:
        return f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}"/>'
    return (f'<bpmn:sequenceFlow id="{fid}" sourceRef="{source}" targetRef="{target}">'
            f"<bpmn:conditionExpression>{escape(condition)}</bpmn:conditionExpression></bpmn:sequenceFlow>")


def chain(*ids: str) -> list[str]:
    """Flows f_a_b linking the ids in order."""
    return [flow(f"f_{a}_{b}", a, b) for a, b in zip(ids, ids[1:], strict=False)]


def linear_process(pid: str, *steps: str, executable: str | None = "true", name: str | None = None) -> str:
    """start -> the given (already built) steps, whose ids are step_0, step_1, ... -> end."""
    ids = ["start", *(f"step_{index}" for index in range(len(steps))), "end"]
    return process(pid, element("startEvent", "start"), *steps, element("endEvent", "end"), *chain(*ids),
                   executable=executable, name=name)


def user_task(index: int, name: str = "Review", **attributes: str) -> str:
    return element("userTask", f"step_{index}", name, **attributes)


def dmn(decision_id: str, *more_decisions: str) -> str:
    """A DMN 1.3 file with one decision table per id (one rule: score > 5 -> 'high')."""
    tables = "".join(
        f'<decision id="{did}" name="{did}"><decisionTable id="{did}_table">'
        f'<input id="{did}_in"><inputExpression id="{did}_expr" typeRef="number"><text>score</text>'
        f'</inputExpression></input><output id="{did}_out" name="risk" typeRef="string"/>'
        f'<rule id="{did}_rule"><inputEntry id="{did}_ie"><text>&gt; 5</text></inputEntry>'
        f'<outputEntry id="{did}_oe"><text>"high"</text></outputEntry></rule></decisionTable></decision>'
        for did in (decision_id, *more_decisions))
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<definitions xmlns="{DMN13_NS}" id="dmn_defs" '
            f'name="Decisions" namespace="http://carepath.test">{tables}</definitions>\n')


def source(name: str, text: str | bytes) -> SourceFile:
    return SourceFile(name, text.encode() if isinstance(text, str) else text)


def line_of(text: str, fragment: str) -> int:
    """The 1-based line where `fragment` first appears in `text`."""
    return text[: text.index(fragment)].count("\n") + 1
