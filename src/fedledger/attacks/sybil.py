"""Sybil: each malicious device forges identities and sends its poisoned update under each."""

from __future__ import annotations

from fedledger.attacks.sign_flip import SignFlip

__all__ = ["Sybil"]


class Sybil(SignFlip):
    """Douceur, IPTPS 2002, "The Sybil Attack"; in federated learning, Fung, Yoon, Beschastnikh,
    RAID 2020, "The Limitations of Federated Learning in Sybil Settings": one adversary joins
    under many identities to multiply its weight. Each malicious device sends its update
    reversed as in :class:`~fedledger.attacks.sign_flip.SignFlip` (``−flip_scale·Δ``), and
    ``attack.sybils`` clones send copies of it under identities nobody registered.

    Without a ledger nothing checks who a sender is, so the clones are aggregated like any
    device (with the sample count of the device they copy). On the ledger each clone signs an
    envelope with its own key and the gateways refuse it as ``unregistered``: the registry
    stops them. ``secagg+`` and ``ckks`` cannot take clones in without a ledger either (they
    would need the round's key agreement), so there the clones are simply not heard.
    """

    name = "sybil"

    @property
    def clones(self) -> int:
        return self.cfg.sybils
