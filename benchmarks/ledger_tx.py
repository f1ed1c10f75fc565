"""Ledger transaction throughput: ms per open_round / commit / vote / payout and tx/s.

Runs full rounds (open, one commit per gateway, one vote per validator, a payout, a seal) on
the embedded chain (``--blocks transaction`` or ``round``), and on a JSON-RPC node if
``--rpc URL`` is given (e.g. the Hardhat node of the tests). Prints medians per transaction type.

    python benchmarks/ledger_tx.py --rounds 40 --gateways 1 --validators 3 --payees 0
    python benchmarks/ledger_tx.py --rounds 40 --blocks round
    (cd tests/ledger/hardhat && npx hardhat node --hostname 127.0.0.1 --port 8545) &
    python benchmarks/ledger_tx.py --rounds 40 --rpc http://127.0.0.1:8545
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path
from tempfile import TemporaryDirectory

from fedledger.ledger import (
    ChainBackend,
    EmbeddedChain,
    LedgerClient,
    Member,
    RpcChain,
    derive_account,
    rewards_digest,
)


def _h(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


def run(
    backend: ChainBackend, seed: int, rounds: int, gateways: int, validators: int, payees: int
) -> None:
    """Deploy, register and drive ``rounds`` rounds; print per-type timings."""
    authority = derive_account(seed, "authority", 0)
    gws = [derive_account(seed, "gateway", i) for i in range(gateways)]
    vals = [derive_account(seed, "validator", i) for i in range(validators)]
    t0 = time.perf_counter()
    client = LedgerClient.deploy(backend, authority, genesis_model=_h("g"), token_supply=10**9)
    deploy_s = time.perf_counter() - t0
    devices = [Member(_h(f"d{i}"), "device", _h(f"dk{i}"), i % gateways) for i in range(payees)]
    members = devices + [
        Member(_h(f"g{i}"), "gateway", _h(f"gk{i}"), i, account=a.address)
        for i, a in enumerate(gws)
    ]
    members += [
        Member(_h(f"v{i}"), "validator", _h(f"vk{i}"), 0, account=a.address)
        for i, a in enumerate(vals)
    ]
    client.register(members)
    ids = [m.id for m in devices]
    amounts = [10 + i for i in range(len(ids))]
    digest = rewards_digest(ids, amounts)
    times: dict[str, list[float]] = defaultdict(list)
    base = client.latest_model()
    start = time.perf_counter()
    sent = 0
    for r in range(1, rounds + 1):
        t = time.perf_counter()
        client.open_round(r, base, _h("config"))
        times["open_round"].append(time.perf_counter() - t)
        for g in gws:
            t = time.perf_counter()
            client.commit(r, g, _h(f"root{r}"), 5)
            times["commit"].append(time.perf_counter() - t)
        model = _h(f"model{r}")
        for v in vals:
            t = time.perf_counter()
            client.vote(r, v, model, _h("acc"), digest, _h("metrics"), _h("quote"))
            times["vote"].append(time.perf_counter() - t)
        if payees:
            t = time.perf_counter()
            client.payout(r, ids, amounts)
            times[f"payout({payees})"].append(time.perf_counter() - t)
        t = time.perf_counter()
        client.seal()
        times["seal"].append(time.perf_counter() - t)
        sent += 1 + len(gws) + len(vals) + (1 if payees else 0)
        base = model
    total = time.perf_counter() - start
    mode = f" blocks={backend.blocks}" if isinstance(backend, EmbeddedChain) else ""
    print(
        f"[{backend.name}{mode}] deploy (3 tx) {deploy_s * 1000:.0f} ms; {rounds} rounds, {sent} tx"
    )
    for name, values in times.items():
        print(f"  {name:<11} median {statistics.median(values) * 1000:6.2f} ms  (n={len(values)})")
    print(f"  round ({sent // rounds} tx) {total / rounds * 1000:.1f} ms; {sent / total:.1f} tx/s")
    t = time.perf_counter()
    for _ in range(100):
        client.round_info(rounds)
    print(f"  view round_info {(time.perf_counter() - t) * 10:.2f} ms")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--gateways", type=int, default=2)
    parser.add_argument("--validators", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--payees", type=int, default=20, help="payout entries (0: no payout)")
    parser.add_argument("--rpc", help="also benchmark a JSON-RPC node at this URL")
    parser.add_argument("--no-log", action="store_true", help="embedded: do not write a tx log")
    parser.add_argument(
        "--blocks", choices=["transaction", "round"], default="transaction", help="embedded blocks"
    )
    args = parser.parse_args(argv)
    accounts = [derive_account(args.seed, "authority", 0).address]
    accounts += [derive_account(args.seed, "gateway", i).address for i in range(args.gateways)]
    accounts += [derive_account(args.seed, "validator", i).address for i in range(args.validators)]
    with TemporaryDirectory() as tmp:
        log = None if args.no_log else Path(tmp) / "ledger.jsonl"
        chain = EmbeddedChain(accounts, log_path=log, blocks=args.blocks)
        run(chain, args.seed, args.rounds, args.gateways, args.validators, args.payees)
        chain.close()
    if args.rpc:
        rpc = RpcChain(args.rpc)
        run(rpc, args.seed + 1, args.rounds, args.gateways, args.validators, args.payees)
        rpc.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
