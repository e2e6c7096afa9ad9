"""Caps on expression evaluation; the defaults suit gateway conditions, timers and DMN cells."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_source_chars: int = 10_000
    max_nodes: int = 2_000
    # Nesting depth of the parsed expression; keeps the evaluator far from Python's recursion limit.
    max_depth: int = 100
    # Work units: one per node evaluated plus the size of every value copied or compared.
    max_steps: int = 100_000
    # Items in a list/tuple/set/dict, characters in a string.
    max_length: int = 100_000
    max_int_bits: int = 4_096
    # Loop iterations of one comprehension, all its `for` clauses together.
    max_iterations: int = 10_000


DEFAULT_LIMITS = Limits()
