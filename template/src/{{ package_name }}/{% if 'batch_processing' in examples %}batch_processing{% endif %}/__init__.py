"""Batch processing: index many documents, a bounded number at once, reporting failures."""

from .activities import NOT_FOUND, BatchActivities
from .models import Batch, BatchResult, DocumentFailure
from .services import DocumentNotFound, SearchIndex
from .workflow import INVALID_BATCH, MAX_DOCUMENTS, BatchProcessingWorkflow

__all__ = [
    "INVALID_BATCH",
    "MAX_DOCUMENTS",
    "NOT_FOUND",
    "Batch",
    "BatchActivities",
    "BatchProcessingWorkflow",
    "BatchResult",
    "DocumentFailure",
    "DocumentNotFound",
    "SearchIndex",
]
