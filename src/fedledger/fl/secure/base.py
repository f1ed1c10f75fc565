"""What every secure-aggregation mode provides to the round: protect, then aggregate.

A mode has two sides. On each device, :meth:`SecureAggregator.protect` turns the device's
update into the payload it signs and sends (sealed, masked or encrypted). On the aggregating
side, :meth:`SecureAggregator.aggregate` turns the payloads that reached it into the next
global model, without anybody outside an attested enclave seeing an individual update.
"""

from __future__ import annotations

import copy
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch

from fedledger.config import SecurityConfig, StrategyConfig
from fedledger.errors import SecureAggregationError
from fedledger.strategies.base import Strategy

__all__ = [
    "RoundInputs",
    "SecureAggregator",
    "SecureContext",
    "SecureOutcome",
    "Submission",
    "apply_mean",
    "round_nonce",
]


@dataclass(frozen=True)
class SecureContext:
    """What a mode needs to know about the run.

    Attributes
    ----------
    seed
        The run seed (simulated keys and nonces derive from it).
    names, sizes
        The model's parameter names and sizes, in the flat vector's order.
    security, strategy
        The ``[security]`` and ``[strategy]`` sections.
    max_weight
        Sample count that weighs 1 in a protected sum (``security.max_weight`` resolved).
    measurement_ok
        Whether an enclave measurement is registered (the ledger's registry, or the
        authority's approved value without a ledger); ``None``: the approved value.
    """

    seed: int
    names: tuple[str, ...]
    sizes: tuple[int, ...]
    security: SecurityConfig
    strategy: StrategyConfig
    max_weight: int
    measurement_ok: Callable[[bytes], bool] | None = None
    model: dict[str, Any] | None = None
    """The model the enclave can rebuild to score updates on the validators' root data
    (``name``, ``hidden``, ``features``, ``classes``, ``labels``); ``None`` for a model given
    as an ``nn.Module``, which the enclave cannot rebuild."""
    incentives: str = "none"
    """The contribution measure an enclave scores the updates with (``incentives.method``
    resolved; ``"none"``: it scores nothing)."""

    @property
    def n_params(self) -> int:
        return sum(self.sizes)


@dataclass(frozen=True)
class RoundInputs:
    """Public inputs of a round besides the updates: FLTrust's reference update and the
    validators' root data (with what the benign-shift probe needs), which a screening strategy
    inside the enclave uses; and, when the
    enclave scores contributions, the validators' valuation rows and the last global step
    (for stale free riders).

    The enclave's transcript names their digest (with the devices' ids), so validators can
    check what it was given.
    """

    reference: torch.Tensor | None = None
    root_x: torch.Tensor | None = None
    root_y: torch.Tensor | None = None
    valuation_x: torch.Tensor | None = None
    valuation_y: torch.Tensor | None = None
    step: torch.Tensor | None = None
    shift: tuple[torch.Tensor, torch.Tensor, int] | None = None
    """Each column's largest value, its one-hot group and the benign class, when the screen
    measures :func:`~fedledger.fl.probe.benign_shift` inside."""


@dataclass(frozen=True)
class Submission:
    """A protected update as the aggregator receives it (from an accepted envelope).

    ``device`` is the device's index in the run, or ``-1`` if it is not one of the round's.
    """

    device: int
    payload: bytes
    n_samples: int

    def digest(self) -> bytes:
        """sha256 of the payload: what the device's envelope signs and a gateway commits."""
        return hashlib.sha256(self.payload).digest()


@dataclass
class SecureOutcome:
    """The result of a protected aggregation.

    Attributes
    ----------
    params
        The new global parameters.
    strategy
        The strategy (a copy) holding its state after the round.
    accepted
        Indexes of the submissions whose update is in the aggregate.
    rejected
        ``{index: reason}`` for the submissions left out.
    evidence
        JSON-ready record of how the result was obtained (transcript, signature, quote,
        survivors, clipped values...).
    flagged
        Device ids the strategy excluded as suspicious (screening inside the enclave).
    contributions, free_riders, evaluations
        What the enclave's transcript says of the devices' contributions.
    """

    params: torch.Tensor
    strategy: Strategy
    accepted: list[int]
    rejected: dict[int, str]
    evidence: dict[str, Any] = field(default_factory=dict)
    flagged: list[int] = field(default_factory=list)
    contributions: dict[int, float] | None = None
    """The enclave's contribution score of each scored device (``None``: it scored none)."""
    free_riders: dict[int, str] = field(default_factory=dict)
    """The scored devices the enclave found free riding, with the kind of update."""
    evaluations: int = 0
    """Models the enclave evaluated to score the round."""


def round_nonce(seed: int, r: int, who: str) -> bytes:
    """A fresh 32-byte attestation challenge of ``who`` for round ``r``."""
    return hashlib.sha256(f"fedledger/attest/v1/{seed}/{r}/{who}".encode()).digest()


def apply_mean(
    strategy: Strategy, base: torch.Tensor, mean: np.ndarray
) -> tuple[torch.Tensor, Strategy]:
    """Apply a weighted-mean update through a copy of an averaging strategy.

    ``secagg+`` and ``ckks`` reveal only the weighted sum, so the strategy sees one row with
    weight 1 — which for FedAvg, FedAvgM and FedAdam is exactly the weighted mean they would
    compute from the individual rows.
    """
    if not np.isfinite(mean).all():
        raise SecureAggregationError(
            "the unprotected sum has NaN or infinite values: an update was corrupt, and "
            "secagg+ and ckks cannot screen individual updates (the enclave mode can)"
        )
    own = copy.deepcopy(strategy)
    row = torch.from_numpy(np.asarray(mean, dtype=np.float32)).unsqueeze(0)
    return own.aggregate(base, row, torch.ones(1, dtype=row.dtype)), own


class SecureAggregator(ABC):
    """One secure-aggregation mode (see the module docstring).

    Parameters
    ----------
    ctx
        The run's :class:`SecureContext`.
    """

    mode: ClassVar[str]
    scheme: ClassVar[str]
    """The envelope scheme of the protected payloads."""

    def __init__(self, ctx: SecureContext) -> None:
        self.ctx = ctx

    def begin_round(  # noqa: B027 - an optional hook
        self, r: int, devices: Sequence[int], n_samples: Sequence[int]
    ) -> None:
        """Set-up before devices protect their updates (attestation, key agreement); called
        before they train, and may run in the background while they do.

        ``devices`` are the run indexes of the round's devices; ``n_samples`` their sample
        counts.
        """

    @abstractmethod
    def protect(self, r: int, device: int, update: np.ndarray) -> bytes | None:
        """``device`` (one of :meth:`begin_round`'s) protects its float32 update; ``None`` if
        the device drops out before sending."""

    @abstractmethod
    def aggregate(
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> SecureOutcome:
        """The next global model from the submissions that reached the aggregator."""

    def speculate(  # noqa: B027 - an optional hook
        self,
        r: int,
        base: torch.Tensor,
        strategy: Strategy,
        submissions: Sequence[Submission],
        round_inputs: RoundInputs | None = None,
    ) -> None:
        """Start aggregating ``submissions`` ahead of time (while gateways check them)."""

    def speculated(self, submissions: Sequence[Submission]) -> SecureOutcome | None:
        """The result of :meth:`speculate` if it aggregated exactly ``submissions``."""
        return None

    def payload_size(self) -> int | None:
        """The exact size of a valid payload, if fixed (gateways refuse others)."""
        return None

    def attest(self, nonce: bytes) -> bytes | None:
        """A verified quote for a validator's ``nonce`` (``None`` if no enclave takes part)."""
        return None

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Stop anything the mode started (an enclave process)."""

    def weight_ratio(self, n_samples: int) -> float:
        """``n_samples / max_weight``: a device's factor in the protected weighted sum."""
        return n_samples / self.ctx.max_weight
