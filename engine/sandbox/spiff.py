"""SpiffWorkflow adapter: a script engine whose expressions and scripts run in the sandbox.

SpiffWorkflow sends every condition, timer, DMN cell and correlation expression through
`environment.evaluate` and every script task through `environment.execute`; both are replaced
here. SpiffWorkflow's DMN engine also calls `script_engine.validate(text)` and reads a
SyntaxError as "this cell is an operator fragment like `> 5`", so `validate` keeps raising
SyntaxError for text that does not parse.
"""

from __future__ import annotations

from collections import ChainMap
from collections.abc import Mapping
from typing import Any

from SpiffWorkflow.bpmn.exceptions import WorkflowTaskException
from SpiffWorkflow.bpmn.script_engine.python_engine import PythonScriptEngine
from SpiffWorkflow.bpmn.script_engine.python_environment import BasePythonScriptEngineEnvironment

from .errors import SandboxError, SandboxSyntaxError
from .expressions import check_expression, evaluate_expression
from .limits import DEFAULT_LIMITS, Limits
from .scripts import run_script

__all__ = ["SandboxedEnvironment", "SandboxedScriptEngine", "make_script_engine"]


class SandboxedEnvironment(BasePythonScriptEngineEnvironment):
    def __init__(self, *, script_timeout_s: float = 5.0, script_memory_mb: int = 256,
                 limits: Limits | None = None) -> None:
        super().__init__({})
        self.script_timeout_s = script_timeout_s
        self.script_memory_mb = script_memory_mb
        self.limits = limits or DEFAULT_LIMITS

    def evaluate(self, expression: str, context: Mapping[str, Any],
                 external_context: Mapping[str, Any] | None = None) -> Any:
        # Task data wins over external names (data objects, DMN's `dmninputexpr`), as in SpiffWorkflow.
        names: ChainMap[str, Any] = ChainMap(context, external_context or {})  # type: ignore[arg-type]
        return evaluate_expression(expression, names, limits=self.limits)

    def execute(self, script: str, context: dict[str, Any],
                external_context: Mapping[str, Any] | None = None) -> bool:
        external = dict(external_context or {})
        result = run_script(script, {**external, **context}, timeout_s=self.script_timeout_s,
                            memory_mb=self.script_memory_mb)
        for name in external:
            if name not in context:
                result.pop(name, None)  # external names are visible to the script, never stored
        _apply_changes(context, result)
        return True

    def call_service(self, context: Mapping[str, Any], **kwargs: Any) -> Any:
        raise SandboxError("service tasks are not available: CarePath pathways cannot call external services")


def _apply_changes(context: dict[str, Any], result: Mapping[str, Any]) -> None:
    for name in [name for name in context if name not in result]:
        del context[name]
    for name, value in result.items():
        # Unchanged values keep their original objects (and exact types, e.g. ZoneInfo time zones).
        if name not in context or not _same(context[name], value):
            context[name] = value


def _same(old: Any, new: Any) -> bool:
    try:
        return type(old) is type(new) and bool(old == new)
    except Exception:
        return False


class SandboxedScriptEngine(PythonScriptEngine):
    environment: SandboxedEnvironment

    def __init__(self, environment: SandboxedEnvironment) -> None:
        super().__init__(environment=environment)

    def evaluate(self, task: Any, expression: str, external_context: Mapping[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except SandboxError as exc:
            # Same wrapper as SpiffWorkflow's, plus the reason, which its message leaves out.
            raise WorkflowTaskException(f"Error evaluating expression '{expression}': {exc.message}",
                                        task=task, exception=exc) from exc

    def validate(self, expression: str) -> None:
        try:
            check_expression(expression, limits=self.environment.limits)
        except SandboxSyntaxError as exc:
            raise SyntaxError(exc.message) from exc

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        try:
            return self.environment.call_service(task.data, **kwargs)
        except SandboxError as exc:
            raise WorkflowTaskException(exc.message, task=task, exception=exc) from exc

    def create_task_exec_exception(self, task: Any, script: str, err: Exception) -> Exception:
        if not isinstance(err, SandboxError):
            return super().create_task_exec_exception(task, script, err)
        lines = script.splitlines()
        error_line = lines[err.line - 1] if err.line and 0 < err.line <= len(lines) else ""
        return WorkflowTaskException(err.message, task=task, exception=err, line_number=err.line,
                                     error_line=error_line)


def make_script_engine(*, script_timeout_s: float = 5.0, script_memory_mb: int = 256,
                       limits: Limits | None = None) -> PythonScriptEngine:
    """The script engine every workflow in CarePath should use."""
    environment = SandboxedEnvironment(script_timeout_s=script_timeout_s, script_memory_mb=script_memory_mb,
                                       limits=limits)
    return SandboxedScriptEngine(environment)
