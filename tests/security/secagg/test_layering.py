"""secagg is a plug-in: it loads only fedledger.errors and fedledger.security, no torch or web3."""

from __future__ import annotations

import subprocess
import sys


def test_importing_secagg_loads_only_allowed_modules() -> None:
    code = (
        "import sys, fedledger.security.secagg\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'web3') or "
        "(m.startswith('fedledger.') and m.split('.')[1] not in ('errors', 'security')))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
