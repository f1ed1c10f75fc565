"""``fedledger ledger show RUN_DIR [--json]``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from fedledger.cli.common import console, friendly_errors

__all__ = ["show_ledger"]


@friendly_errors
def show_ledger(
    run_dir: Annotated[Path, typer.Argument(help="a run folder with a ledger")],
    as_json: Annotated[bool, typer.Option("--json", help="print everything as JSON")] = False,
) -> None:
    """Rounds, gateway commits, validator votes, gas and token balances of RUN_DIR's ledger."""
    from fedledger.audit.show import ledger_summary  # web3 and py-evm are slow to import

    summary = ledger_summary(run_dir)
    if as_json:
        typer.echo(json.dumps(summary, indent=1))
        return
    m = summary["members"]
    console.print(
        f"{summary['backend']} ledger (chain id {summary['chain_id']}): {m['device']} devices, "
        f"{m['gateway']} gateways, {m['validator']} validators, quorum {summary['quorum']}; "
        f"gas {summary['gas']['setup']} for set-up, {summary['gas']['rounds']} for rounds",
        highlight=False,
        soft_wrap=True,
    )
    table = Table("round", "status", "model", "commits", "votes", "gas")
    for r in summary["rounds"]:
        votes = r["votes"]
        agree = sum(1 for v in votes if v["agrees"])
        against = ", ".join(v["validator"] for v in votes if not v["agrees"])
        table.add_row(
            str(r["round"]),
            r["status"]
            + (" (fallback)" if str(r.get("gate") or "").startswith("fallback") else ""),
            (r["model"] or "—")[:16],
            f"{len(r['commits'])} ({sum(c['envelopes'] for c in r['commits'])} envelopes)",
            f"{agree}/{len(votes)}" + (f" (against: {against})" if against and agree else ""),
            str(r["gas"]),
        )
    console.print(table)
    t = summary["token"]
    console.print(
        f"token: supply {t['total_supply']}, treasury {t['treasury']}, "
        f"{len(summary['balances'])} balances, {len(summary['stakes'])} stakes",
        highlight=False,
    )
