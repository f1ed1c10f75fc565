"""The exceptions fedledger raises.

Every error derives from :class:`FedledgerError`; each subclass also inherits the builtin
exception it refines, so ``except ValueError`` keeps working for callers that do not know
fedledger. The CLI turns any ``FedledgerError`` into a one-line message and a non-zero exit.
"""

from __future__ import annotations

__all__ = [
    "AttestationError",
    "CheckpointError",
    "ConfigError",
    "DataError",
    "DatasetNotFoundError",
    "EnvelopeError",
    "FedledgerError",
    "LedgerError",
    "ModelError",
    "ModelFidelityError",
    "RegistryError",
    "SecureAggregationError",
]


class FedledgerError(Exception):
    """Root of every error raised on purpose by fedledger."""


class ConfigError(FedledgerError, ValueError):
    """A configuration key is unknown or its value is invalid.

    Parameters
    ----------
    key
        Dotted name of the offending key (``"train.lr"``), or ``""`` for the whole file.
    message
        What is wrong with it, in one line.
    """

    def __init__(self, key: str, message: str) -> None:
        self.key = key
        self.message = message
        super().__init__(f"{key}: {message}" if key else message)


class RegistryError(FedledgerError, KeyError):
    """A name is not in a plug-in registry; the message lists the known names."""

    def __init__(self, family: str, name: str, known: list[str]) -> None:
        self.family = family
        self.name = name
        self.known = sorted(known)
        super().__init__(f"unknown {family} {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0])


class DataError(FedledgerError, ValueError):
    """A dataset could not be read or does not have the expected shape."""


class DatasetNotFoundError(DataError, FileNotFoundError):
    """A dataset file or folder does not exist."""


class ModelError(FedledgerError, ValueError):
    """A model does not fit the data, or cannot be built from the config."""


class CheckpointError(FedledgerError, ValueError):
    """A run folder cannot be resumed or reported on."""


class EnvelopeError(FedledgerError, ValueError):
    """A signed update envelope or its payload is malformed, oversize or inconsistent.

    Parameters
    ----------
    reason
        Short machine-readable reason code (``"malformed"``, ``"unknown-version"``,
        ``"oversize"``, ``"digest-mismatch"``, ``"non-finite"``) that a gateway counts.
    message
        What is wrong, in one line.
    """

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        self.message = message
        super().__init__(f"{reason}: {message}")


class ModelFidelityError(FedledgerError, ValueError):
    """A model blob does not hash to the digest the ledger finalised: it is refused."""


class LedgerError(FedledgerError, RuntimeError):
    """The ledger refused, reverted or could not be reached, or its transaction log is invalid."""


class AttestationError(FedledgerError, ValueError):
    """An enclave's quote is refused: bad signature, unregistered measurement or stale nonce."""


class SecureAggregationError(FedledgerError, ValueError):
    """A secure-aggregation round cannot proceed: bad parameters, a malformed or inconsistent
    message, or too few surviving devices (Shamir shares) to unmask the sum."""
