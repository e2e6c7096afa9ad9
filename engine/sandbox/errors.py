"""Errors raised when user-supplied expressions and scripts are checked or run.

    SandboxError                  anything the sandbox refused or that failed inside it
    ├── SandboxViolation          a construct that is not allowed (import, dunder access, lambda, ...)
    │   └── SandboxSyntaxError    the source is not valid Python
    ├── SandboxLimitExceeded      a cap was hit: size, evaluation steps, time or memory
    ├── UndefinedName             a name or dict field the expression uses does not exist
    ├── ExpressionFailed          an expression raised an ordinary error (division by zero, bad types)
    └── ScriptFailed              a script task raised an error; carries the script line

Messages are written for the clinical lead who authored the diagram.
"""

from __future__ import annotations


class SandboxError(Exception):
    def __init__(self, message: str, *, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        # 1-based line in the user's source, when known.
        self.line = line


class SandboxViolation(SandboxError):
    pass


class SandboxSyntaxError(SandboxViolation):
    pass


class SandboxLimitExceeded(SandboxError):
    pass


class UndefinedName(SandboxError):
    pass


class ExpressionFailed(SandboxError):
    pass


class ScriptFailed(SandboxError):
    def __init__(self, message: str, *, line: int | None = None, error_class: str = "Exception") -> None:
        super().__init__(message, line=line)
        # Name of the Python exception the script raised, e.g. "ZeroDivisionError".
        self.error_class = error_class
