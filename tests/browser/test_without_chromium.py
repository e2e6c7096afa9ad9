"""The rule for a machine without Chromium: CI fails (it must install Chromium), a developer's machine skips
with the reason. Needs no browser, so it runs everywhere."""

from __future__ import annotations

from pathlib import Path

from .conftest import without_chromium


def test_without_chromium_ci_fails_and_a_developer_machine_skips_with_the_reason(tmp_path: Path) -> None:
    absent = tmp_path / "chromium"
    assert without_chromium(absent, in_ci=True) == (
        "fail", f"browser tests cannot run in CI: {absent} is absent: apt-get install chromium chromium-driver "
        "(.ci/run does)")
    assert without_chromium(absent, in_ci=False) == (
        "skip", f"{absent} is absent: apt-get install chromium chromium-driver (.ci/run does)")
    absent.touch()
    assert without_chromium(absent, in_ci=True) is None and without_chromium(absent, in_ci=False) is None
