"""The backdoor's trigger on the attack-free model: what a backdoor that planted nothing scores.

A trigger can make a model that never saw it call some samples the target class anyway (on
NSL-KDD, four feature columns set to 5.0 turn 0 to 82% of the attacks a clean detector gets
right into "normal", depending on which columns the seed picks). Backdoor success under a
defence means little without that number next to it, so for every finished ``backdoor`` cell
whose defence and seed also ran attack-free (``none``), :func:`with_trigger_baselines` stamps
the same trigger on the test split and measures it on that attack-free run's final model
(:meth:`~fedledger.attacks.backdoor.Backdoor.evaluate`, the same measure as the cell's own
``backdoor_success``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path

from fedledger.assemble import build_simulation
from fedledger.config import Config
from fedledger.errors import FedledgerError
from fedledger.ledger.model_store import decode_tensors
from fedledger.matrix.cell import CellResult
from fedledger.matrix.spec import ATTACK_FREE, Cell

__all__ = ["BACKDOOR", "trigger_success", "with_trigger_baselines"]

#: The attack whose cells get a baseline.
BACKDOOR = "backdoor"

_MODEL = "model.safetensors"


def trigger_success(config: Config, model_file: Path) -> float | None:
    """The backdoor of ``config`` (its trigger, target and seed) measured on the model saved in
    ``model_file``; ``None`` when there is nothing to measure (no test sample of another class
    that the model gets right).

    Raises
    ------
    FedledgerError
        The model file is not a safetensors file of ``config``'s model.
    OSError
        The model file cannot be read.
    """
    sim = build_simulation(config)
    if sim.attack is None:
        raise FedledgerError(f"{config.attack.name}: not an attack with a trigger")
    tensors = decode_tensors(model_file.read_bytes())
    try:
        sim.model.load_state_dict(tensors)
    except RuntimeError as exc:  # other names or shapes than the config's model
        first = str(exc).strip().splitlines()[0]
        raise FedledgerError(f"{model_file}: not a model of this config ({first})") from None
    sim.model.eval()
    metrics = sim.attack.evaluate(sim.model, sim.eval_data.x_test, sim.eval_data.y_test)
    value = metrics.get("backdoor_success")
    return float(value) if isinstance(value, int | float) else None


def with_trigger_baselines(
    results: Sequence[CellResult], configs: dict[Cell, Config], root: Path
) -> list[CellResult]:
    """``results`` with ``backdoor_baseline`` filled in on every finished backdoor cell whose
    defence and seed ran attack-free too (one measurement per defence and seed: the trigger
    does not depend on the fraction). A baseline that cannot be measured stays ``None``.

    Parameters
    ----------
    results
        One row per cell.
    configs
        Every cell's config (:meth:`~fedledger.matrix.spec.MatrixSpec.configs`).
    root
        The matrix folder (the cells' ``run_dir`` are relative to it).
    """
    clean = {
        (r.cell.defence, r.cell.seed): r
        for r in results
        if r.cell.attack == ATTACK_FREE and r.ok and r.run_dir
    }
    measured: dict[tuple[str, int], float | None] = {}
    out = []
    for r in results:
        key = (r.cell.defence, r.cell.seed)
        if r.cell.attack != BACKDOOR or not r.ok or key not in clean:
            out.append(r)
            continue
        if key not in measured:
            try:
                measured[key] = trigger_success(configs[r.cell], root / clean[key].run_dir / _MODEL)
            except (FedledgerError, OSError):
                measured[key] = None
        out.append(dataclasses.replace(r, backdoor_baseline=measured[key]))
    return out
