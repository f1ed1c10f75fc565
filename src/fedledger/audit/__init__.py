"""Offline audit of a run folder: replay the ledger and check every record against it."""

from fedledger.audit.report import AuditReport, Check
from fedledger.audit.run import audit_run

__all__ = ["AuditReport", "Check", "audit_run"]
