"""Checks of how the run was set up: its config and its registered members."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fedledger.audit.checks.common import ChainView, brief, guarded, members_of
from fedledger.audit.report import Check
from fedledger.config import load_config
from fedledger.fl.ledger_setup import ledger_config_digest
from fedledger.fl.run_folder import RunFolder
from fedledger.security.identity import member_id

__all__ = ["check_config", "check_registry"]


def check_config(run_dir: Path, chain: ChainView) -> Check:
    def body(c: Check) -> None:
        config = load_config(run_dir / "config.toml")
        missing = RunFolder(run_dir).config_keys_missing(config)
        if missing:  # this version's defaults stand in for them: no digest can match
            c.fail(
                f"config.toml lacks {', '.join(missing)}: written by an earlier fedledger "
                "(or edited), so the digest its rounds were opened with cannot be checked "
                "here; audit the run with the fedledger that made it"
            )
            return
        digest = ledger_config_digest(config)
        if (run_dir / "summary.json").is_file() and config.train.rounds != len(chain.rounds):
            c.fail(
                f"config.toml says train.rounds = {config.train.rounds}, but the finished run "
                f"has {len(chain.rounds)} rounds on chain"
            )
        for r, info in sorted(chain.rounds.items()):
            c.checked += 1
            if info["config"] != digest:
                c.fail(
                    f"round {r}: opened with config digest {brief(info['config'])}, but "
                    f"config.toml hashes to {brief(digest)} (config.toml was changed)"
                )

    return guarded(Check("config", "config.toml is the config every round was opened with"), body)


def check_registry(deployment: dict[str, Any], chain: ChainView) -> Check:
    """deployment.json and the chain's registry list the same members, keys and settings."""

    def body(c: Check) -> None:
        listed: set[bytes] = set()
        for m in members_of(deployment):
            c.checked += 1
            mid = bytes.fromhex(m["id"])
            listed.add(mid)
            if member_id(m["role"], m["name"]) != mid:
                c.fail(
                    f"deployment.json: {m['role']} {m['name']!r} does not have the id {brief(mid)}"
                )
            on_chain = chain.members.get(mid)
            if on_chain is None:
                c.fail(f"{m['role']} {m['name']} ({brief(mid)}) is not registered on chain")
                continue
            if on_chain["key"] != bytes.fromhex(m["key"]) or on_chain["role"] != m["role"]:
                c.fail(f"{m['role']} {m['name']}: key or role differs from the chain's registry")
            if m["role"] == "device" and on_chain["cluster"] != m["cluster"]:
                c.fail(f"device {m['name']}: cluster differs from the chain's registry")
        for mid, m in chain.members.items():
            if mid not in listed:
                c.fail(f"the chain registers a {m['role']} {brief(mid)} that deployment.json omits")
        n_validators = sum(1 for m in chain.members.values() if m["role"] == "validator")
        settings = {
            "quorum": (deployment.get("quorum"), chain.quorum_setting),
            "validators": (deployment.get("validators"), n_validators),
            "genesis_model": (deployment.get("genesis_model"), chain.genesis_model.hex()),
            "chain_id": (deployment.get("chain_id"), chain.chain_id),
        }
        for key, (recorded, actual) in settings.items():
            if recorded != actual:
                c.fail(f"deployment.json: {key} is {recorded!r}, the chain says {actual!r}")
        revoked = [m for m in chain.members.values() if m["status"] != "active"]
        if revoked:
            c.notes.append(f"{len(revoked)} member(s) revoked on chain")

    return guarded(
        Check("registry", "deployment.json lists exactly the members and settings on chain"), body
    )
