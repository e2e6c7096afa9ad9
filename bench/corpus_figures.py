"""The corpus figures docs/corpus.md records: `carepath validate --offline` and `carepath simulate` on every file.

    python -m bench.corpus_figures ../shared/corpus [--tsv out.tsv]

Each BPMN/DMN file of the corpus folder is validated as a clinical lead would (`carepath validate --offline
FILE`: the DMN files and called processes beside it are found); each accepted one is simulated with no steps
(`carepath simulate FILE --json`: start data from its sidecar, else none). Both run in this process through
the command line's own entry point, one file at a time under an alarm. The figures: accepted, refused by the
kind of its first problem, and what each accepted diagram's simulation ended in — completed, waiting (for a
person, a timer or a message), an incident (a stall the engine reports is one), or silently stalled (running,
nothing ready, nothing waited for: what the stall invariant exists to make impossible).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import re
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType

from carepath.api.cli import main
from carepath.api.pathway_commands import _package_files
from carepath.api.settings import Settings
from carepath.engine.definitions import SourceFile
from carepath.engine.errors import DiagramInvalid
from carepath.engine.usecases.deploy import check_package, stored_spec
from tests.definitions.test_corpus import kind_of

SECONDS_PER_FILE = 30
_SUFFIXES = (".bpmn", ".bpmn20.xml", ".xml", ".dmn")
SPLIT_ON_A_TASK = "only gateways may split"


class _Hang(BaseException):
    pass


def _on_alarm(signum: int, frame: FrameType | None) -> None:
    raise _Hang()


@dataclass
class FileOutcome:
    path: str
    validate: str  # "accepted", "refused", "hang", "crash"
    problems: list[str] = field(default_factory=list)  # the refusal's problem lines
    simulate: str = ""  # completed, waiting, incident, stalled, stopped, failed (exit code 2, crash, hang)
    detail: str = ""

    @property
    def refusal_kind(self) -> str:
        return kind_of(self.problems[0]) if self.problems else ""

    @property
    def splits_on_a_task(self) -> bool:
        return any(SPLIT_ON_A_TASK in problem for problem in self.problems)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    signal.alarm(SECONDS_PER_FILE)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except _Hang:
        code = -1
    except Exception as exc:  # a crash is a figure too
        code, err = -2, io.StringIO(f"{type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
    return code, out.getvalue(), err.getvalue()


def measure(path: Path, root: Path) -> FileOutcome:
    code, _, err = _run(["validate", "--offline", str(path)])
    name = str(path.relative_to(root))
    if code != 0:
        verdict = {-1: "hang", -2: "crash"}.get(code, "refused")
        problems = [_unlocated(line.strip(), root) for line in err.splitlines() if line.startswith("  ")]
        return FileOutcome(name, verdict, problems, detail=err[-300:] if verdict != "refused" else "")
    outcome = FileOutcome(name, "accepted")
    if path.name.lower().endswith(".dmn"):
        return outcome
    code, out, err = _run(["simulate", str(path), "--json"])
    outcome.simulate, outcome.detail = _judge_simulation(code, out, err)
    return outcome


def _unlocated(line: str, root: Path) -> str:
    """A problem line without its "file, line N, element: " prefix."""
    return line.split(": ", 1)[-1] if line.startswith(str(root)) else line


def measure_corpus(root: Path, *, forced: bool = False) -> list[FileOutcome]:
    """Every file of the corpus folder, validated and (when accepted) simulated; `forced`: validated only,
    each process taken as executable (what the file's other problems are, past isExecutable)."""
    paths = sorted(p for p in root.rglob("*") if p.is_file() and p.name.lower().endswith(_SUFFIXES))
    previous = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        return [measure_forced(path, root) if forced else measure(path, root) for path in paths]
    finally:
        signal.signal(signal.SIGALRM, previous)


_EXECUTABLE = re.compile(rb'(<(?:\w+:)?process\b)([^>]*?)(/?>)')


def _executable(content: bytes) -> bytes:
    def mark(match: re.Match[bytes]) -> bytes:
        attributes = re.sub(rb'\sisExecutable="[^"]*"', b"", match.group(2))
        return match.group(1) + attributes + b' isExecutable="true"' + match.group(3)
    return _EXECUTABLE.sub(mark, content)


def measure_forced(path: Path, root: Path) -> FileOutcome:
    name = str(path.relative_to(root))
    signal.alarm(SECONDS_PER_FILE)
    try:
        with contextlib.redirect_stderr(io.StringIO()), contextlib.redirect_stdout(io.StringIO()):
            sources, _, _ = _package_files([path])
            sources[0] = SourceFile(sources[0].name, _executable(sources[0].content))
            for process in check_package(Settings().engine_config(), sources).processes:
                stored_spec(process)
    except DiagramInvalid as refused:
        return FileOutcome(name, "refused", [problem.message for problem in refused.problems])
    except _Hang:
        return FileOutcome(name, "hang")
    except Exception as exc:  # a crash is a figure too
        return FileOutcome(name, "crash", detail=f"{type(exc).__name__}: {exc}")
    finally:
        signal.alarm(0)
    return FileOutcome(name, "accepted")


def _judge_simulation(code: int, out: str, err: str) -> tuple[str, str]:
    if code == 2 and "choose one with --process" in err:
        return "not simulated", "several processes to start"
    if code in (-1, -2) or not out.strip():
        return {-1: "timeout", -2: "crash"}.get(code, "failed"), " ".join(err.split())[-300:]
    result = json.loads(out)
    if result["status"] == "completed":
        return "completed", ""
    if result["status"] == "incident":
        incident = result["moments"][-1].get("incident") or {}
        return "incident", f"{incident.get('element_id')}: {incident.get('message')}"
    if result.get("stopped"):
        return "stopped", result["stopped"]
    if result["open_tasks"] or result["timers"] or result["messages"] or result.get("external_tasks"):
        return "waiting", ""
    return "stalled", "running with nothing ready and nothing waited for"


def summary(outcomes: list[FileOutcome]) -> str:
    totals = Counter(o.validate for o in outcomes)
    lines = [f"{len(outcomes)} files: {totals['accepted']} accepted, {totals['refused']} refused, "
             f"{totals['hang']} hung, {totals['crash']} crashed"]
    split = [o for o in outcomes if o.splits_on_a_task]
    lines.append(f"refused for an activity with several outgoing flows: {len(split)} files "
                 f"({sum(all(SPLIT_ON_A_TASK in p for p in o.problems) for o in split)} with no other problem)")
    lines.append("refused, by the kind of the first problem:")
    kinds = Counter(o.refusal_kind for o in outcomes if o.validate == "refused")
    lines += [f"  {count:5d}  {kind}" for kind, count in kinds.most_common()]
    simulated = Counter(o.simulate for o in outcomes if o.simulate)
    lines.append("accepted BPMN files, simulated with no steps: " +
                 ", ".join(f"{count} {what}" for what, count in simulated.most_common()))
    incidents = Counter(o.detail.split(": ", 1)[-1][:70] for o in outcomes if o.simulate == "incident")
    lines += [f"  incident {count:4d}  {what}" for what, count in incidents.most_common(12)]
    return "\n".join(lines)


def main_figures(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--tsv", type=Path, help="write one row per file here")
    parser.add_argument("--force-executable", action="store_true",
                        help="validate only, every process taken as executable")
    args = parser.parse_args(argv)
    outcomes = measure_corpus(args.corpus, forced=args.force_executable)
    if args.tsv:
        rows = ["\t".join((o.path, o.validate, o.refusal_kind, str(o.splits_on_a_task), o.simulate,
                           " ".join(o.detail.split()), " | ".join(o.problems)[:2000])) for o in outcomes]
        args.tsv.write_text("path\tvalidate\trefusal\tsplit_on_task\tsimulate\tdetail\tproblems\n" +
                            "\n".join(rows) + "\n")
    print(summary(outcomes))
    return 0


if __name__ == "__main__":
    sys.exit(main_figures())
