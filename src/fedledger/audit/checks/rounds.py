"""Checks of each round against the chain: the recorded story, and the votes that carried it."""

from __future__ import annotations

from fedledger.audit.checks.common import ChainView, brief, guarded, round_records, validator_names
from fedledger.audit.report import Check
from fedledger.fl.gate import gate_evidence
from fedledger.fl.ledger_records import LedgerRecords
from fedledger.fl.tasks import EvalStats
from fedledger.fl.validator import accepted_digest, metrics_digest

__all__ = ["check_rounds", "check_votes"]


def check_rounds(records: LedgerRecords, chain: ChainView) -> Check:
    """rounds.jsonl tells the chain's story: the same rounds, outcomes, commits, votes and
    transactions."""

    def body(c: Check) -> None:
        recorded = round_records(records, c)
        names = validator_names(records.deployment())
        for r in sorted(set(recorded) - set(chain.rounds)):
            c.fail(f"ledger/rounds.jsonl records round {r}, which is not on the chain")
        for r, info in sorted(chain.rounds.items()):
            rec = recorded.get(r)
            if rec is None:
                c.fail(f"round {r} is on the chain but not in ledger/rounds.jsonl")
                continue
            c.checked += 1
            where = f"ledger/rounds.jsonl (round {r})"
            finalised = info["status"] == "finalised"
            if (rec["status"] == "finalised") != finalised:  # "open" becomes "failed" later
                c.fail(f"{where}: status {rec['status']!r}, the chain says {info['status']!r}")
            model = info["model"].hex() if finalised else None
            if rec["model"] != model:
                c.fail(f"{where}: model {rec['model']!r} is not the chain's {model!r}")
            commits = [(g["root"], g["count"]) for g in rec["gateways"] if g["committed"]]
            on_chain = [(root.hex(), count) for _, root, count in chain.commits.get(r, [])]
            if commits != on_chain:
                c.fail(f"{where}: gateway roots and counts differ from the chain's commits")
            n_honest = int(records.deployment()["validators"]) - int(
                records.deployment()["byzantine"]
            )
            for v in rec["votes"]:
                byzantine = v["validator"] >= n_honest
                if (v["byzantine"] is not None) != byzantine:
                    c.fail(f"{where}: validator-{v['validator']}'s Byzantine flag was changed")
            votes = {f"validator-{v['validator']}": v for v in rec["votes"]}
            for vid, vmodel, vaccepted, _rewards, vmetrics in chain.votes.get(r, []):
                name = names.get(vid, brief(vid))
                mine = votes.pop(name, None)
                if mine is None or (mine["model"], mine["accepted"], mine["metrics"]) != (
                    vmodel.hex(),
                    vaccepted.hex(),
                    vmetrics.hex(),
                ):
                    c.fail(f"{where}: {name}'s vote differs from the one on chain")
            for name in votes:
                c.fail(f"{where}: a vote of {name} that is not on the chain")
            txs = chain.txs.get(r, {})
            if sorted(rec["transactions"]) != sorted(txs):
                c.fail(f"{where}: its transactions are not the chain's transactions of round {r}")
            if rec["gas"] != sum(txs.values()):
                c.fail(f"{where}: gas {rec['gas']} is not the {sum(txs.values())} on chain")

    return guarded(Check("rounds", "ledger/rounds.jsonl matches the chain round by round"), body)


def check_votes(records: LedgerRecords, chain: ChainView) -> Check:
    """Quorum, validator registration, accepted-set digests and each vote's metrics evidence."""

    def body(c: Check) -> None:
        names = validator_names(records.deployment())
        recorded = round_records(records, Check("", ""))
        for r, info in sorted(chain.rounds.items()):
            votes = chain.votes.get(r, [])
            c.checked += len(votes)
            roots = [root for _, root, _ in chain.commits.get(r, [])]
            if info["status"] == "finalised":
                if len(chain.agreeing(r)) < chain.quorum:
                    c.fail(
                        f"round {r}: finalised with {len(chain.agreeing(r))} agreeing votes, "
                        f"quorum is {chain.quorum}"
                    )
                if info["accepted"] != accepted_digest(roots):
                    c.fail(f"round {r}: finalised accepted-set digest is not the gateways' roots")
            else:
                c.notes.append(
                    f"round {r}: not finalised ({info['status']}); the previous model stood"
                )
            rec = recorded.get(r)
            evidence = (
                {} if rec is None else {f"validator-{v['validator']}": v for v in rec["votes"]}
            )
            for vote in votes:
                vid, model, _accepted, _rewards, mdigest = vote
                name = names.get(vid)
                if name is None:
                    c.fail(f"round {r}: vote from {brief(vid)}, not a validator of this run")
                    continue
                if info["status"] == "finalised" and vote not in chain.agreeing(r):
                    why = "a model digest" if model != info["model"] else "an accepted set"
                    c.notes.append(
                        f"round {r}: {name} was outvoted (voted for {why} the quorum did not)"
                    )
                ev = evidence.get(name)
                if ev is None or rec is None:
                    c.fail(f"round {r}: no recorded evaluation for {name}'s vote")
                    continue
                stats = EvalStats.from_json(ev["stats"])
                try:
                    gate = gate_evidence(rec.get("gate"), int(ev["validator"]))
                except KeyError:
                    c.fail(f"round {r}: no recorded gate decision for {name}'s vote")
                    continue
                screen = rec.get("screen")
                flagged = None if screen is None else [int(d) for d in screen["flagged"]]
                digest = metrics_digest(
                    r, name, model, stats, rec["context"], rec["labels"], gate, flagged
                )
                if digest != mdigest:
                    c.fail(
                        f"round {r}: {name}'s recorded evaluation does not match the metrics "
                        f"digest of its vote (ledger/rounds.jsonl was changed)"
                    )

    return guarded(
        Check(
            "votes",
            "finalised rounds have a quorum of registered validators voting for the committed set",
        ),
        body,
    )
