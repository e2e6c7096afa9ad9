"""The SpiffWorkflow adapter. Nothing outside engine/ imports from here directly but the use cases."""

from .workflow import RunningWorkflow

__all__ = ["RunningWorkflow"]
