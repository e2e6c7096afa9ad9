"""uvicorn's access log without query strings: a query can carry health information (a patient id, a
name searched for), and the access log is not the place for it. The path stays, so requests remain
traceable; who read which record is in the audit trail instead (docs/audit.md)."""

from __future__ import annotations

import logging

ACCESS_LOGGER = "uvicorn.access"


class PathWithoutQuery(logging.Filter):
    """Rewrites uvicorn's access record (client, method, path?query, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) == 5 and isinstance(args[2], str) and "?" in args[2]:
            record.args = (args[0], args[1], args[2].split("?", 1)[0], args[3], args[4])
        return True


def install_path_only_access_log() -> None:
    logger = logging.getLogger(ACCESS_LOGGER)
    if not any(isinstance(f, PathWithoutQuery) for f in logger.filters):
        logger.addFilter(PathWithoutQuery())
