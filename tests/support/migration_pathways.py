"""A small pathway in three versions, for moving episodes between versions (tests/test_migrations.py)."""

from __future__ import annotations

from . import diagrams as d

KEY = "fu"


def version_1() -> str:
    """start -> Call patient -> wait 7 days -> Review -> end"""
    return _chain(["call", "wait", "review"])


def version_2() -> str:
    """Version 1 with a Survey added after Review."""
    return _chain(["call", "wait", "review", "survey"])


def without_call() -> str:
    """Call patient removed."""
    return _chain(["wait", "review"])


def _chain(ids: list[str]) -> str:
    names = {"call": "Call patient", "review": "Review", "survey": "Survey"}
    elements = [d.node("startEvent", "start"), d.node("endEvent", "end")]
    for nid in ids:
        if nid == "wait":
            week = d.timer("timeDuration", "P7D")
            elements.append(d.node("intermediateCatchEvent", "wait", "Wait a week", body=week))
        else:
            elements.append(d.node("userTask", nid, names[nid]))
    chain = ["start", *ids, "end"]
    elements += [d.flow(f"f_{a}_{b}", a, b) for a, b in zip(chain, chain[1:], strict=False)]
    return d.definitions(d.process(KEY, *elements))
