"""security is a plug-in: it loads no orchestration, ledger, torch or web3 code."""

from __future__ import annotations

import subprocess
import sys


def test_importing_security_loads_only_allowed_modules() -> None:
    code = (
        "import sys, fedledger.security\n"
        "ok = ('errors', 'digest', 'security')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'web3') or "
        "(m.startswith('fedledger.') and m.split('.')[1] not in ok))\n"
        "print(','.join(bad))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == ""
