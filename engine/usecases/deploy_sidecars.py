"""A pathway deployed without its sidecar keeps the sidecar of its latest version.

A clinical lead who re-uploads an edited diagram from the editor rarely re-uploads `<name>.pathway.json`;
without this, the new version would silently have no quality measures and no start data. To change or
drop them, upload a sidecar (`{"measures": []}` drops the measures).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select

from ..application import CarePath
from ..definitions import ParsedProcess, SourceFile
from ..definitions._pathway_meta import attach_sidecars, parse_sidecar, sidecar_name
from ..errors import DiagramInvalid, Problem
from ..persistence.tables import DeploymentFile, PathwayVersion


@dataclass(frozen=True)
class KeptSidecar:
    version: int  # the version whose sidecar is kept
    file_id: int
    content: bytes
    warning: Problem


def keep_sidecars(app: CarePath, processes: Sequence[ParsedProcess]) -> dict[str, KeptSidecar]:
    """For each process uploaded without a sidecar whose latest version has one: that sidecar, applied to
    the process as if uploaded (checked against the new diagram). Raises DiagramInvalid when it no longer
    fits the diagram."""
    kept: dict[str, KeptSidecar] = {}
    problems: list[Problem] = []
    with app.db.read() as session:
        for proc in (p for p in processes if p.sidecar_file is None):
            latest = session.execute(
                select(PathwayVersion.version, DeploymentFile.id, DeploymentFile.content)
                .outerjoin(DeploymentFile, DeploymentFile.id == PathwayVersion.sidecar_file_id)
                .where(PathwayVersion.key == proc.key).order_by(PathwayVersion.version.desc()).limit(1)).first()
            if latest is None or latest.id is None:
                continue
            name = sidecar_name(proc.source_file)
            found = attach_sidecars([proc], [SourceFile(name, latest.content)], [proc.source_file])
            problems += [Problem(f"The upload has no {name}, so '{proc.key}' would keep the sidecar of version "
                                 f"{latest.version}, which does not fit the new diagram: {p.message} Upload {name} "
                                 "with the diagram.", proc.source_file) for p in found]
            warning = _kept_warning(proc, name, latest.version, latest.content)
            kept[proc.key] = KeptSidecar(latest.version, latest.id, latest.content, warning)
    if problems:
        raise DiagramInvalid(f"The upload cannot be deployed: {len(problems)} problem(s) found.", problems)
    return kept


def _kept_warning(proc: ParsedProcess, name: str, version: int, content: bytes) -> Problem:
    sidecar, _ = parse_sidecar(name, content)
    held = [f"{len(proc.measures)} quality measure(s)"]
    held += ["its start data"] if sidecar.get("start_data") is not None else []
    held += ["its example data"] if sidecar.get("example_data") is not None else []
    held += ["its intake"] if sidecar.get("intake") is not None else []
    return Problem(f"The upload has no {name}: '{proc.key}' keeps the sidecar of version {version} "
                   f"({', '.join(held)}). To change or drop them, upload {name} with the diagram "
                   '({"measures": []} drops the measures).', proc.source_file)
