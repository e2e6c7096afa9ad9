"""The screenshots command's reading of docs/ui.md (tests/browser/screenshots.py)."""

from __future__ import annotations

from pathlib import Path

from tests.browser.screenshots import GUIDE, shown_in_guide


def test_the_pictures_a_guide_shows_are_read_from_its_image_links(tmp_path: Path) -> None:
    guide = tmp_path / "ui.md"
    guide.write_text("# x\n![The worklist](ui/worklist.png)\ntext ![Task page, refused](ui/task-errors.png)\n"
                     "[a link, not a picture](ui/other.png) ![elsewhere](img/x.png)\n", encoding="utf-8")
    assert shown_in_guide(guide) == ["worklist", "task-errors"]


def test_every_picture_docs_ui_shows_is_in_the_repository() -> None:
    missing = [name for name in shown_in_guide(GUIDE) if not (GUIDE.parent / "ui" / f"{name}.png").is_file()]
    assert missing == [], "run: python -m tests.browser.screenshots"
