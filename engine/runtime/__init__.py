"""The SpiffWorkflow adapter. Nothing outside engine/ imports from here directly but the use cases."""

import logging

from .workflow import RunningWorkflow

# SpiffWorkflow builds the extras of its INFO records before the logger decides whether to log them, and while
# its own loggers' level is unset (0, below INFO) they include every task id of the workflow (a walk of the
# whole tree per workflow created) and the task's data, for records nobody sees. At WARNING (unless configured
# otherwise) neither is added; `logging.getLogger("spiff.task").setLevel(...)` after this import brings the
# records back for debugging.
for _name in ("spiff.workflow", "spiff.task", "spiff.data"):
    if logging.getLogger(_name).level == logging.NOTSET:
        logging.getLogger(_name).setLevel(logging.WARNING)

__all__ = ["RunningWorkflow"]
