"""Hostile scripts are refused or stopped with a SandboxError, and the worker pool keeps working."""

from __future__ import annotations

import pytest

from carepath.engine.sandbox import SandboxError, SandboxLimitExceeded, ScriptFailed, run_script

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("assert_pool_still_works")]

DATA = {"age": 40, "name": "ada"}

REFUSED = [
    "__import__('os').system('id')",
    "import os",
    "import os.path",
    "import subprocess",
    "from os import system",
    "from datetime import sys",
    "from . import scripts",
    "import json\nx = json.decoder",
    "import json\nx = json.codecs.sys",
    "import statistics\nx = statistics.random",
    "import decimal\ndecimal.setcontext(decimal.Context(prec=10**9))",
    "import math\nx = math.__loader__",
    "x = ().__class__.__base__.__subclasses__()",
    "x = getattr((), '__class__')",
    "x = '{0.__class__}'.format(1)",
    "x = '{x.__class__}'.format_map({'x': 1})",
    "x = str.format('{0.__class__}', 1)",
    "x = f'{().__class__}'",
    "g = (i for i in [])\nx = g.gi_frame.f_globals",
    "def f():\n    yield 1\nx = f().gi_frame",
    "x = [].__class__.__mro__",
    "x = type(1)",
    "x = vars()",
    "x = globals()",
    "x = locals()",
    "x = eval('1')",
    "exec('x = 1')",
    "x = compile('1', '<s>', 'eval')",
    "x = open('/etc/passwd').read()",
    "x = __builtins__",
    "x = dir()",
    "x = sys.modules",
    "x = os._exit(0)",
    "x = (lambda: 0).__code__",
    "def f():\n    pass\nx = f.__globals__",
    "x = len.__self__",
    "x = {}.get.__self__",
    "try:\n    1 / 0\nexcept Exception as e:\n    x = e.__traceback__.tb_frame.f_globals",
    "class Escape:\n    pass",
    "raise SystemExit",
    "raise SystemExit(0)",
    "raise KeyboardInterrupt",
    "raise BaseException('boom')",
    "import datetime\ndatetime.datetime = None",
    "setattr(name, 'upper', None)",
    "x = name.encode('idna')",
    "def f(n):\n    return f(n + 1)\nf(0)",
]

STOPPED = [
    "x = 10**10**8",
    "x = 'a' * 10**10",
    "x = [0] * 10**10",
    "x = 1 << 10**9",
    "while True:\n    pass",
    "x = []\nwhile True:\n    x.append('a' * 10**6)",
    "x = list(range(10**12))",
    "x = sum(range(10**12))",
    "x = [[0] * 10**4 for i in range(10**5)]",
    "try:\n    x = 'a' * 10**10\nexcept MemoryError:\n    while True:\n        pass",
    "x = " + "(" * 5000 + "1" + ")" * 5000,
    "x = " + "-" * 90_000 + "1",
    "x = 1\n" * 100_000,
]


@pytest.mark.parametrize("source", REFUSED)
def test_escape_attempt_is_refused(source: str) -> None:
    with pytest.raises(SandboxError):
        run_script(source, DATA, timeout_s=5)


@pytest.mark.parametrize("source", STOPPED)
def test_runaway_script_is_stopped(source: str) -> None:
    with pytest.raises(SandboxError):
        run_script(source, DATA, timeout_s=1, memory_mb=128)


def test_an_endless_loop_is_reported_as_a_time_limit() -> None:
    with pytest.raises(SandboxLimitExceeded, match="ran longer than 1 seconds"):
        run_script("while True:\n    pass", DATA, timeout_s=1)


def test_a_memory_bomb_is_reported_as_a_memory_limit() -> None:
    with pytest.raises(SandboxLimitExceeded, match="more than 64 MB"):
        run_script("x = []\nwhile True:\n    x.append('a' * 10**6)", DATA, timeout_s=30, memory_mb=64)


def test_system_exit_is_an_ordinary_script_failure() -> None:
    with pytest.raises(ScriptFailed) as caught:
        run_script("x = 1\nraise SystemExit(3)", DATA)
    assert (caught.value.error_class, caught.value.line) == ("SystemExit", 2)


def test_print_spam_is_bounded_and_never_reaches_the_server(capfd: pytest.CaptureFixture[str]) -> None:
    script = "for i in range(100000):\n    print('spam-line', i)\nkept = len(printed)"
    assert run_script(script, DATA, timeout_s=60)["kept"] <= 10_000
    captured = capfd.readouterr()
    assert "spam-line" not in captured.out + captured.err


def test_a_script_cannot_leave_state_behind_for_the_next_one() -> None:
    with pytest.raises(SandboxError):
        run_script("import math\nmath.pi = 3", DATA)
    assert run_script("import math\nx = math.pi", DATA)["x"] == pytest.approx(3.14159, rel=1e-5)
