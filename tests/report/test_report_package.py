"""The report package's public surface and its place in the layering."""

from __future__ import annotations

import ast
from pathlib import Path

import fedledger.report

REPORT_DIR = Path(fedledger.report.__file__).parent
ALLOWED_FEDLEDGER = {"fedledger.errors", "fedledger.digest", "fedledger.report"}
ALLOWED_THIRD_PARTY = {"numpy", "matplotlib"}


def test_all_is_sorted_and_complete() -> None:
    names = fedledger.report.__all__
    assert names == sorted(names)
    assert set(names) >= {
        "binary_detection_metrics",
        "classification_metrics",
        "plot_confusion",
        "plot_devices",
        "plot_rounds",
        "read_devices",
        "read_metrics",
        "read_summary",
        "write_report",
    }
    for name in names:
        assert callable(getattr(fedledger.report, name))


def test_imports_only_low_layers() -> None:
    """report/ may use numpy, matplotlib, the stdlib and fedledger.errors/digest, nothing above."""
    for source in sorted(REPORT_DIR.glob("*.py")):
        tree = ast.parse(source.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top == "fedledger":
                    assert any(
                        module == allowed or module.startswith(allowed + ".")
                        for allowed in ALLOWED_FEDLEDGER
                    ), f"{source.name} imports {module}"
                else:
                    assert top in ALLOWED_THIRD_PARTY or top in _stdlib(), (
                        f"{source.name} imports {module}"
                    )
                assert module != "matplotlib.pyplot", f"{source.name} uses pyplot global state"


def _stdlib() -> frozenset[str]:
    import sys

    return frozenset(sys.stdlib_module_names) | {"__future__"}
