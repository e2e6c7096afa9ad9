"""Robustness on real diagrams: every corpus file imports, or is refused with located problems.

The corpus (BPMN/DMN files exported by real editors, see its README) is not part of the repository;
point CAREPATH_CORPUS_DIR at it, e.g. `CAREPATH_CORPUS_DIR=../shared/corpus pytest -m corpus -s`.
"""

from __future__ import annotations

import os
import re
import signal
import time
import traceback
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import pytest

from carepath.engine.definitions import ParsedPackage, SourceFile, parse_package
from carepath.engine.errors import DiagramInvalid
from carepath.engine.usecases.deploy import stored_spec

SECONDS_PER_FILE = 20
_SUFFIXES = (".bpmn", ".bpmn20.xml", ".xml", ".dmn")
# A problem in these words means the importer itself broke, not the diagram.
_IMPORTER_DEFECT = re.compile(r"importer's checks failed")
_KINDS = [
    ("not executable", "not marked executable"),
    ("gateway without condition", "with no condition"),
    ("gateway without condition", "outgoing flows with no condition"),
    ("split on a task", "only gateways may split"),
    ("no start event", "has no start event"),
    ("subprocess start/end", "start events, but a subprocess"),
    ("subprocess start/end", "has no end event"),
    ("data store", "data store"),
    ("decision", "decision"),
    ("call activity", "calls process"),
    ("call activity", "which process it calls"),
    ("undefined message/signal/error", "which is not defined"),
    ("unnamed message", "which has no name"),
    ("data association", "data association"),
    ("DOCTYPE", "DOCTYPE"),
    ("empty file", "file is empty"),
    ("correlation", "Correlation property"),
    ("cancel event", "cancel boundary event"),
    ("parse time budget", "took longer than"),
    ("timer", "timer"),
    ("link/compensation", "link event"),
    ("link/compensation", "compensation"),
    ("script", "script"),
    ("condition", "The condition"),
    ("unsupported element", "cannot run"),
    ("boundary event trigger", "no trigger"),
    ("loop / multi-instance", "multi-instance"),
    ("loop / multi-instance", "loop"),
    ("no process", "no BPMN process"),
    ("DMN only", "DMN file"),
    ("not UTF-8", "not UTF-8"),
    ("not XML / not BPMN", "not well-formed XML"),
    ("not XML / not BPMN", "does not contain XML"),
    ("not XML / not BPMN", "not a BPMN or DMN"),
    ("library could not read", "could not be read"),
    ("cannot be saved", "cannot save between steps"),
]


class _Hang(BaseException):
    """Raised by the alarm; a BaseException so no `except Exception` in the library can swallow it."""


@dataclass(frozen=True)
class CorpusCase:
    path: Path
    files: tuple[Path, ...]


def corpus_cases(root: Path) -> Iterator[CorpusCase]:
    """Each .bpmn file with the .dmn files of its folder (so business rule tasks resolve); each .dmn alone."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(_SUFFIXES))
    for path in paths:
        if path.name.lower().endswith(".dmn"):
            yield CorpusCase(path, (path,))
        else:
            decisions = tuple(p for p in paths if p.parent == path.parent and p.name.lower().endswith(".dmn"))
            yield CorpusCase(path, (path, *decisions))


def kind_of(message: str) -> str:
    return next((kind for kind, words in _KINDS if words in message), message[:60])


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang()


def run_case(case: CorpusCase) -> tuple[str, str | None]:
    """(outcome, failure): outcome is 'ok' or 'refused: <kind>'; failure says what was wrong, if anything."""
    files = [SourceFile(path.name, path.read_bytes()) for path in case.files]
    signal.alarm(SECONDS_PER_FILE)
    try:
        package = parse_package(files)
    except DiagramInvalid as refused:
        return _judge_refusal(refused)
    except _Hang:
        return "hang", f"took more than {SECONDS_PER_FILE} s"
    except Exception:
        return "crash", traceback.format_exc(limit=4)
    finally:
        signal.alarm(0)
    return _judge_success(package)


def _judge_refusal(refused: DiagramInvalid) -> tuple[str, str | None]:
    if not refused.problems:
        return "refused: (no problems)", "DiagramInvalid without problems"
    outcome = f"refused: {kind_of(refused.problems[0].message)}"
    if not any(problem.message.strip() and problem.file for problem in refused.problems):
        return outcome, f"no problem names a file: {refused.problems[:3]}"
    defects = [problem for problem in refused.problems if _IMPORTER_DEFECT.search(problem.message)]
    if defects:
        return outcome, f"importer defect: {defects[0].message}"
    return outcome, None


def _judge_success(package: ParsedPackage) -> tuple[str, str | None]:
    if not package.processes:
        return "ok", "accepted without any process"
    missing = [process.key for process in package.processes if process.spec is None]
    if missing:
        return "ok", f"processes without a spec: {missing}"
    try:  # deploying stores each spec: that must work too, or be refused with a located problem
        for process in package.processes:
            stored_spec(process)
    except DiagramInvalid as refused:
        return _judge_refusal(refused)
    return "ok", None


@pytest.mark.corpus
@pytest.mark.timeout(1800, method="thread")  # the per-file alarm needs SIGALRM to itself
def test_every_corpus_file_imports_or_is_refused_with_located_problems() -> None:
    corpus = os.environ.get("CAREPATH_CORPUS_DIR", "")  # unset: conftest skips this test with the reason
    root = Path(corpus)
    assert root.is_dir(), f"CAREPATH_CORPUS_DIR={corpus} is not a folder"
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    outcomes: Counter[str] = Counter()
    failures: list[str] = []
    started = time.monotonic()
    try:
        for case in corpus_cases(root):
            outcome, failure = run_case(case)
            total = "ok" if outcome == "ok" else "refused" if outcome.startswith("refused") else outcome
            outcomes[total] += 1
            outcomes[outcome] += outcome != "ok"
            if failure is not None:
                failures.append(f"{case.path.relative_to(root)}: {outcome}: {failure}")
    finally:
        signal.signal(signal.SIGALRM, previous)
    summary = _summary(outcomes, time.monotonic() - started)
    print(summary)
    listing = "\n".join(failures)
    assert not failures, f"{len(failures)} corpus file(s) misbehaved:\n{listing}\n{summary}"


def _summary(outcomes: Counter[str], seconds: float) -> str:
    lines = [f"corpus: {outcomes['ok']} ok, {outcomes['refused']} refused, {outcomes['hang']} hung, "
             f"{outcomes['crash']} crashed in {seconds:.0f} s; refusals by first problem:"]
    lines += [f"  {count:5d}  {kind.removeprefix('refused: ')}" for kind, count in outcomes.most_common()
              if kind.startswith("refused: ")]
    return "\n".join(lines)
