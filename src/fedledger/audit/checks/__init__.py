"""The audit's checks, one module per subject: each compares a part of the run folder with the
replayed chain and returns a :class:`~fedledger.audit.report.Check` whose problems name the
round, the member and the file line involved. A record too damaged to read is a problem of
the check that reads it, never a crash (:func:`guarded`).
"""

from fedledger.audit.checks.common import ChainView, guarded
from fedledger.audit.checks.envelopes import check_envelopes
from fedledger.audit.checks.gate import check_gate
from fedledger.audit.checks.metrics import check_metrics
from fedledger.audit.checks.models import check_models
from fedledger.audit.checks.rounds import check_rounds, check_votes
from fedledger.audit.checks.secure import check_secure
from fedledger.audit.checks.setup import check_config, check_registry
from fedledger.audit.checks.token import check_token

__all__ = [
    "ChainView",
    "check_config",
    "check_envelopes",
    "check_gate",
    "check_metrics",
    "check_models",
    "check_registry",
    "check_rounds",
    "check_secure",
    "check_token",
    "check_votes",
    "guarded",
]
