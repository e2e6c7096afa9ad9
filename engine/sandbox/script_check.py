"""Compile a script task with RestrictedPython, reporting the first problem with its line.

Shared by the deploy-time check (in the server) and the worker (which compiles what it runs).
Compiling never runs the script, so doing it in the server process is safe.
"""

from __future__ import annotations

import ast
import re
from types import CodeType

from RestrictedPython import compile_restricted_exec

from .errors import SandboxLimitExceeded, SandboxSyntaxError, SandboxViolation
from .script_policy import ALLOWED_IMPORTS

MAX_SCRIPT_CHARS = 100_000
SCRIPT_FILENAME = "<script>"
_LINE_PREFIX = re.compile(r"^Line (\d+): (.*)$", re.DOTALL)


def compile_script(source: str) -> CodeType:
    if len(source) > MAX_SCRIPT_CHARS:
        raise SandboxLimitExceeded(
            f"the script is {len(source)} characters long; the limit is {MAX_SCRIPT_CHARS}")
    tree = _parse(source)
    _check_statements(tree)
    try:
        result = compile_restricted_exec(tree, filename=SCRIPT_FILENAME)
    except (RecursionError, MemoryError):
        raise SandboxLimitExceeded("the script is nested too deeply") from None
    if result.errors or result.code is None:
        raise _violation(result.errors[0] if result.errors else "the script could not be compiled")
    return result.code


def _parse(source: str) -> ast.Module:
    try:
        return ast.parse(source, filename=SCRIPT_FILENAME)
    except SyntaxError as exc:
        raise SandboxSyntaxError(f"invalid script: {exc.msg}", line=exc.lineno) from None
    except ValueError as exc:  # e.g. a NUL character in the source
        raise SandboxSyntaxError(f"invalid script: {exc}") from None
    except (RecursionError, MemoryError):
        raise SandboxLimitExceeded("the script is nested too deeply") from None


def _check_statements(tree: ast.Module) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            raise SandboxViolation("class definitions are not allowed in scripts", line=node.lineno)
        if isinstance(node, ast.Import):
            for alias in node.names:
                _check_import(alias.name, (), node.lineno)
        elif isinstance(node, ast.ImportFrom):
            names = tuple(alias.name for alias in node.names)
            _check_import(node.module or "", names, node.lineno, relative=node.level > 0)


def _check_import(module: str, names: tuple[str, ...], line: int, *, relative: bool = False) -> None:
    allowed = ALLOWED_IMPORTS.get(module)
    if relative or allowed is None:
        modules = ", ".join(sorted(ALLOWED_IMPORTS))
        raise SandboxViolation(f"import of '{module}' is not allowed; scripts may import {modules}",
                               line=line)
    for name in names:
        if name not in allowed:
            raise SandboxViolation(f"'{name}' cannot be imported from {module}", line=line)


def _violation(message: str) -> SandboxViolation:
    match = _LINE_PREFIX.match(message)
    if match is None:
        return SandboxViolation(message)
    line, text = int(match.group(1)), match.group(2)
    if text.startswith("SyntaxError: "):
        return SandboxSyntaxError(f"invalid script: {text.removeprefix('SyntaxError: ')}", line=line)
    return SandboxViolation(text, line=line)
