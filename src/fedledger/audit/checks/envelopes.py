"""Checks of the accepted envelopes: signatures, registration, and the committed Merkle roots."""

from __future__ import annotations

from fedledger.audit.checks.common import ChainView, brief, guarded, members_of
from fedledger.audit.report import Check
from fedledger.errors import EnvelopeError
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.security.envelope import EnvelopeHeader, envelope_digest, verify_header
from fedledger.security.merkle import merkle_root

__all__ = ["check_envelopes"]


def check_envelopes(records: LedgerRecords, chain: ChainView) -> Check:
    """Signatures, registration, round binding, uniqueness, and each gateway's Merkle root."""

    def body(c: Check) -> None:
        leaves: dict[tuple[int, bytes], list[tuple[int, bytes]]] = {}
        seen: set[tuple[int, bytes]] = set()
        gateways = sorted(
            (m for m in members_of(records.deployment()) if m["role"] == "gateway"),
            key=lambda m: int(m["index"]),
        )
        gateway_ids = [bytes.fromhex(m["id"]) for m in gateways]
        for number, line in records.envelopes():
            where = f"ledger/envelopes.jsonl line {number}"
            if line is None:
                c.fail(f"{where} is not a JSON object")
                continue
            c.checked += 1
            try:
                header = EnvelopeHeader.from_json(line["header"])
                signature = bytes.fromhex(line["signature"])
                r, gw, leaf = line["round"], line["gateway"], line["leaf"]
                if not all(isinstance(x, int) for x in (r, gw, leaf)) or gw < 0 or leaf < 0:
                    raise ValueError("round, gateway and leaf must be non-negative integers")
            except (KeyError, TypeError, ValueError, EnvelopeError) as exc:
                c.fail(f"{where}: unreadable ({exc})")
                continue
            device = chain.members.get(header.device_id)
            if device is None or device["role"] != "device":
                c.fail(f"{where}: device {brief(header.device_id)} is not registered")
                continue
            if not verify_header(header, signature, device["key"]):
                c.fail(f"{where}: signature of device {brief(header.device_id)} does not verify")
            if header.round != r:
                c.fail(f"{where}: envelope signed for round {header.round} recorded in round {r}")
            if (r, header.device_id) in seen:
                c.fail(f"{where}: second envelope of device {brief(header.device_id)} in round {r}")
            seen.add((r, header.device_id))
            if gw >= len(gateway_ids):
                c.fail(f"{where}: unknown gateway {gw}")
                continue
            leaves.setdefault((r, gateway_ids[gw]), []).append(
                (leaf, envelope_digest(header, signature))
            )
        for r, commits in sorted(chain.commits.items()):
            for gid, root, count in commits:
                got = sorted(leaves.pop((r, gid), []))
                if [i for i, _ in got] != list(range(len(got))):
                    c.fail(f"round {r}: gateway {brief(gid)}'s recorded leaves are not 0..n-1")
                if len(got) != count:
                    c.fail(
                        f"round {r}: gateway {brief(gid)} committed {count} envelopes, "
                        f"{len(got)} are recorded"
                    )
                if merkle_root([d for _, d in got]) != root:
                    c.fail(
                        f"round {r}: recorded envelopes of gateway {brief(gid)} do not rebuild "
                        f"its committed Merkle root"
                    )
        for r, gid in sorted(leaves):
            c.fail(
                f"round {r}: envelopes recorded for gateway {brief(gid)}, which committed nothing"
            )

    return guarded(
        Check(
            "envelopes",
            "accepted envelopes are signed by registered devices and rebuild every committed root",
        ),
        body,
    )
