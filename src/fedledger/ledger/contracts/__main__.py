"""``python -m fedledger.ledger.contracts``: recompile the contracts and rewrite build/*.json."""

from __future__ import annotations

import sys

from fedledger.ledger.contracts.artifacts import write_artifacts

for path in write_artifacts():
    sys.stdout.write(f"wrote {path}\n")
