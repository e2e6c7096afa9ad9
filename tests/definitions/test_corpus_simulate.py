"""No accepted corpus diagram ends its simulation silently stalled: `carepath validate --offline` then
`carepath simulate` on every corpus file (bench/corpus_figures.py, the figures in docs/corpus.md). A pathway
that stops with nothing open and nothing awaited is reported as an incident naming the element."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from bench.corpus_figures import measure_corpus, summary

# Measured on the shared corpus (docs/corpus.md); more may pass as CarePath reads more of what editors write.
ACCEPTED_AT_LEAST = 387


@pytest.mark.corpus
@pytest.mark.timeout(3600, method="thread")  # the per-file alarm needs SIGALRM to itself
def test_no_accepted_corpus_diagram_ends_its_simulation_silently_stalled() -> None:
    corpus = os.environ.get("CAREPATH_CORPUS_DIR", "")  # unset: conftest skips this test with the reason
    root = Path(corpus)
    assert root.is_dir(), f"CAREPATH_CORPUS_DIR={corpus} is not a folder"
    outcomes = measure_corpus(root)
    print(summary(outcomes))
    verdicts = Counter(outcome.validate for outcome in outcomes)
    assert verdicts["hang"] == verdicts["crash"] == 0, [o.path for o in outcomes if o.validate in ("hang", "crash")]
    stalled = [outcome.path for outcome in outcomes if outcome.simulate == "stalled"]
    assert not stalled, f"{len(stalled)} accepted diagram(s) stalled with nothing open or awaited: {stalled}"
    crashed = [f"{outcome.path}: {outcome.detail}" for outcome in outcomes if outcome.simulate in ("crash", "failed")]
    assert not crashed, crashed
    assert verdicts["accepted"] >= ACCEPTED_AT_LEAST
