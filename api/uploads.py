"""A deploy's uploaded files, read the same way for the JSON API and the web app's upload form: the name
cut to its last part (a browser or client may send a path), the files' total bounded."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.datastructures import UploadFile

from carepath.engine.definitions import SourceFile
from carepath.engine.errors import PayloadTooLarge


def size_in_words(size: int) -> str:
    return f"{size // (1024 * 1024)} MB" if size >= 1024 * 1024 else f"{size // 1024} KB"


def upload_name(upload: UploadFile) -> str:
    return (upload.filename or "").rsplit("/", 1)[-1].rsplit("\\", 1)[-1] or "upload.bpmn"


def read_uploads(files: Sequence[UploadFile], max_bytes: int) -> list[SourceFile]:
    sources, total = [], 0
    for upload in files:
        name = upload_name(upload)
        content = upload.file.read(max_bytes + 1)
        total += len(content)
        if total > max_bytes:
            raise PayloadTooLarge(f"the upload is too large: the files together exceed "
                                  f"{size_in_words(max_bytes)} (at '{name}')")
        sources.append(SourceFile(name, content))
    return sources
