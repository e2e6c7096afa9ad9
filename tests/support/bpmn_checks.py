"""Checks the shipped pathways' parse tests share."""

from __future__ import annotations

from typing import Any

BPMN_NS = {"bpmn": "http://www.omg.org/spec/BPMN/20100524/MODEL"}


def assert_exclusive_gateways_have_conditions(root: Any) -> None:
    """Every exclusive gateway with two or more outgoing flows names a default, and every other flow out
    of it has a condition."""
    for gateway in root.iterfind(".//bpmn:exclusiveGateway", BPMN_NS):
        outgoing = root.xpath(".//bpmn:sequenceFlow[@sourceRef=$id]", namespaces=BPMN_NS, id=gateway.get("id"))
        if len(outgoing) < 2:
            continue
        assert gateway.get("default"), f"gateway {gateway.get('id')} has no default flow"
        for flow in outgoing:
            if flow.get("id") != gateway.get("default"):
                assert flow.find("bpmn:conditionExpression", BPMN_NS) is not None, flow.get("id")
