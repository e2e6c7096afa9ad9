"""Take the screenshots of docs/ui.md: `python -m tests.browser.screenshots [FOLDER]` (default docs/ui).

It runs the browser tests (tests/browser/) with CAREPATH_SCREENSHOTS set, so each screen is photographed in
the very flow that tests it (`Visit.shoot(name)` in the tests), at a tablet-like 1280 px wide window; an
ordinary test run writes no picture. Then it checks that every picture docs/ui.md shows was taken, and says
which were not (a test renamed or removed) — exit 1 then.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUIDE = ROOT / "docs" / "ui.md"


def shown_in_guide(guide: Path) -> list[str]:
    """The screenshots docs/ui.md shows: `![...](ui/NAME.png)`."""
    return re.findall(r"!\[[^\]]*\]\(ui/([\w.-]+)\.png\)", guide.read_text(encoding="utf-8"))


def main(argv: list[str]) -> int:
    folder = Path(argv[0]) if argv else ROOT / "docs" / "ui"
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.png"):
        old.unlink()
    env = {**os.environ, "CAREPATH_SCREENSHOTS": str(folder.resolve())}
    run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/browser"],
                         cwd=ROOT, env=env, check=False)
    if run.returncode != 0:
        print("the browser tests failed: the screenshots are incomplete", file=sys.stderr)
        return run.returncode
    taken = {path.stem for path in folder.glob("*.png")}
    missing = [name for name in shown_in_guide(GUIDE) if name not in taken]
    if missing:
        print(f"docs/ui.md shows pictures no test took: {', '.join(missing)}", file=sys.stderr)
        return 1
    print(f"{len(taken)} screenshots in {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
