"""Sandbox for untrusted BPMN expressions and scripts.

Expressions (conditions, timers, DMN cells, correlation keys) are interpreted from their syntax
tree in-process; script tasks run in locked-down worker processes. `carepath.engine.sandbox.spiff`
plugs both into SpiffWorkflow (imported separately so script workers never load SpiffWorkflow).
"""

from .errors import (
    ExpressionFailed,
    SandboxError,
    SandboxLimitExceeded,
    SandboxSyntaxError,
    SandboxViolation,
    ScriptFailed,
    UndefinedName,
)
from .expressions import check_expression, evaluate_expression
from .limits import Limits
from .scripts import check_script, configure_script_pool, run_script, shutdown_script_pool

__all__ = [
    "ExpressionFailed",
    "Limits",
    "SandboxError",
    "SandboxLimitExceeded",
    "SandboxSyntaxError",
    "SandboxViolation",
    "ScriptFailed",
    "UndefinedName",
    "check_expression",
    "check_script",
    "configure_script_pool",
    "evaluate_expression",
    "run_script",
    "shutdown_script_pool",
]
