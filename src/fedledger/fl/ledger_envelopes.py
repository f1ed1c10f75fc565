"""The devices' side of a ledger round, and what the gateways made of it.

Helpers of :class:`~fedledger.fl.ledger_protocol.LedgerProtocol`: each device's payload (its
plain float32 update or its protected one), the Ed25519 envelopes the devices — and the Sybil
attack's unregistered clones — sign over them for their gateways, and, once the gateways have
checked and committed, the accepted updates in the order the validators aggregate them, the
rejection counts and the ``ledger/envelopes.jsonl`` lines.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from fedledger.errors import FedledgerError
from fedledger.fl.engine import Simulation
from fedledger.fl.network import Participants, device_nonce
from fedledger.fl.round_data import LocalUpdates
from fedledger.security.envelope import seal_envelope
from fedledger.security.identity import derive_identity
from fedledger.security.payload import encode_f32

__all__ = [
    "accepted_updates",
    "add_sybils",
    "check_finite",
    "envelope_lines",
    "merge_reasons",
    "protect_payloads",
    "sign_envelopes",
    "trainer_order",
]


def protect_payloads(
    sim: Simulation, r: int, updates: torch.Tensor, order: list[int]
) -> list[bytes | None]:
    """Each device's payload: its plain float32 update, or with a secure-aggregation mode
    its protected update (``None`` for a device that drops out)."""
    matrix = updates.detach().numpy()
    if sim.secure is None:
        return [encode_f32(row) for row in matrix]
    return [sim.secure.protect(r, d, matrix[k]) for k, d in enumerate(order)]


def add_sybils(
    inbox: dict[int, list[bytes]],
    sim: Simulation,
    r: int,
    local: LocalUpdates,
    scheme: str,
    seed: int,
    people: Participants,
) -> None:
    """The Sybil attack's clones sign envelopes with keys of their own, which nobody
    registered, and send them to their device's gateway (which refuses them).

    Parameters
    ----------
    inbox
        Extra envelopes by gateway index; the clones' envelopes are appended to it.
    sim, r, local
        The simulation, the round and its devices' local updates (with their clones').
    scheme
        The payload scheme of the round's envelopes.
    seed
        The run seed, which the clones' keys and nonces are derived from.
    people
        The participants (each device's gateway).
    """
    weight = {d: int(w) for d, w in zip(local.order, local.weights, strict=True)}
    count: dict[int, int] = {}
    for d, row in local.sybils:
        j = count[d] = count.get(d, -1) + 1
        ident = derive_identity(seed, "device", f"sybil-{d}-{j}")
        vector = row.detach().numpy()
        payload = None
        if sim.secure is not None and sim.secure.mode == "enclave":
            payload = sim.secure.protect(r, d, vector)
        if payload is None:
            payload = encode_f32(vector)
        nonce = hashlib.sha256(f"fedledger/sybil/{seed}/{r}/{d}/{j}".encode()).digest()
        env = seal_envelope(ident, r, weight[d], scheme, payload, nonce[:16])
        inbox.setdefault(people.gateway_of[d], []).append(env.encode())


def sign_envelopes(
    r: int,
    order: list[int],
    weights: torch.Tensor,
    payloads: list[bytes | None],
    scheme: str,
    seed: int,
    people: Participants,
    extra: dict[int, list[bytes]],
) -> tuple[dict[int, list[bytes]], dict[tuple[bytes, bytes], int]]:
    """Each device signs its payload; returns what each gateway receives (plus anything in
    ``extra``) and the row of each device's envelope, by ``(device id, nonce)``.

    Parameters
    ----------
    r
        The round.
    order, weights, payloads
        The device of each row, its sample count and its payload (``None``: dropped out).
    scheme
        The payload scheme of the round's envelopes.
    seed
        The run seed, which the devices' nonces are derived from.
    people
        The participants (the devices' identities and gateways).
    extra
        Envelopes to deliver besides the devices' own, by gateway index (tests, attacks).
    """
    inbox: dict[int, list[bytes]] = {g: [] for g in range(len(people.gateways))}
    rows: dict[tuple[bytes, bytes], int] = {}
    for k, d in enumerate(order):
        payload = payloads[k]
        if payload is None:  # the device dropped out: it sends nothing
            continue
        ident = people.devices[d]
        nonce = device_nonce(seed, r, d)
        env = seal_envelope(ident, r, int(weights[k]), scheme, payload, nonce)
        rows[(ident.id, nonce)] = k
        inbox[people.gateway_of[d]].append(env.encode())
    for g, more in extra.items():
        inbox[g].extend(more)
    return inbox, rows


def accepted_updates(
    updates: torch.Tensor,
    weights: torch.Tensor,
    kept: list[int],
    extra: list[dict[str, Any]],
) -> tuple[torch.Tensor, torch.Tensor]:
    """The accepted rows in the trainer's order, then accepted envelopes from elsewhere."""
    parts = [updates[kept]]
    w = [weights[kept]]
    for item in extra:
        row = np.frombuffer(bytes.fromhex(item["update"]), dtype="<f4").astype(np.float32)
        parts.append(torch.from_numpy(row.copy()).unsqueeze(0))
        w.append(torch.tensor([float(item["n_samples"])], dtype=weights.dtype))
    return torch.cat(parts), torch.cat(w)


def trainer_order(item: dict[str, Any]) -> tuple[bool, int]:
    """Devices' own envelopes in the trainer's row order, then any others (as in plain mode,
    so the aggregate is bit-identical)."""
    return (item["row"] < 0, item["row"])


def envelope_lines(r: int, batches: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The round's ``ledger/envelopes.jsonl`` lines: each gateway's envelopes, by leaf."""
    return [
        {"round": r, "gateway": b["gateway"], "leaf": i, **env}
        for b in batches
        for i, env in enumerate(b["envelopes"])
    ]


def check_finite(r: int, accepted: Sequence[Any], reasons: dict[str, int], submitted: int) -> None:
    """Stop the run when every submitted update was refused for NaN/Inf values."""
    if not accepted and reasons.get("non-finite", 0) >= submitted > 0:
        raise FedledgerError(
            f"round {r}: every device's update has NaN/Inf values (training diverged); "
            f"lower train.lr"
        )


def merge_reasons(batches: list[dict[str, Any]]) -> dict[str, int]:
    """How many envelopes the gateways rejected, by reason."""
    total: dict[str, int] = {}
    for b in batches:
        for x in b["rejected"]:
            total[x["reason"]] = total.get(x["reason"], 0) + 1
    return dict(sorted(total.items()))
