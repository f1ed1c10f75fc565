"""The matrix's grid: :class:`MatrixSpec` (the options, validated) and its :class:`Cell` runs."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fedledger.assemble import check_names
from fedledger.attacks import ATTACKS
from fedledger.config import Config, load_config
from fedledger.errors import ConfigError
from fedledger.strategies import STRATEGIES

__all__ = ["ATTACK_FREE", "HONEST_ONLY", "Cell", "MatrixSpec"]

#: The attack name of the attack-free baseline (run once per defence and seed, fraction 0).
ATTACK_FREE = "none"

#: The defence name of the honest-only reference: FedAvg with ``attack.honest_only = true``
#: (the malicious devices sit out, as if a defence had found exactly them).
HONEST_ONLY = "honest_only"

#: ``--set`` keys the matrix sets itself, per cell, and the option that does.
_CELL_KEYS = {
    "strategy.name": "--defences",
    "attack.name": "--attacks",
    "attack.fraction": "--fractions",
}


def _fraction_text(fraction: float) -> str:
    """``0.3`` -> ``"0.3"``, ``0.0`` -> ``"0"`` (folder names and labels)."""
    return f"{fraction:g}"


@dataclass(frozen=True)
class Cell:
    """One run of the matrix.

    Attributes
    ----------
    defence
        ``strategy.name``, or :data:`HONEST_ONLY`.
    attack
        ``attack.name`` (``none`` for the baseline).
    fraction
        ``attack.fraction`` (0 for the baseline).
    seed
        ``train.seed`` of the run (the config's seed plus the seed index).
    """

    defence: str
    attack: str
    fraction: float
    seed: int

    @property
    def name(self) -> str:
        """The run folder's name: ``<defence>__<attack>__<fraction>__s<seed>``."""
        return f"{self.defence}__{self.attack}__{_fraction_text(self.fraction)}__s{self.seed}"

    @property
    def row_label(self) -> str:
        """The table/heatmap row: ``attack@fraction``, or ``none`` for the baseline."""
        if self.attack == ATTACK_FREE:
            return ATTACK_FREE
        return f"{self.attack}@{_fraction_text(self.fraction)}"

    def overrides(self) -> list[str]:
        """The ``--set`` overrides that make a run this cell."""
        if self.defence == HONEST_ONLY:
            strategy = ['strategy.name="fedavg"', "attack.honest_only=true"]
        else:
            strategy = [f"strategy.name={json.dumps(self.defence)}"]
        return [
            *strategy,
            f"attack.name={json.dumps(self.attack)}",
            f"attack.fraction={self.fraction!r}",
            f"train.seed={self.seed}",
        ]


def _split(text: str, option: str, what: str) -> list[str]:
    """Comma-separated items, stripped, duplicates dropped (first one kept)."""
    items = list(dict.fromkeys(item.strip() for item in text.split(",") if item.strip()))
    if not items:
        raise ConfigError(option, f"no {what} given (a comma-separated list)")
    return items


def _names(text: str, option: str, what: str, known: Iterable[str]) -> tuple[str, ...]:
    names = _split(text, option, what)
    registry = sorted(known)
    for name in names:
        if name not in registry:
            raise ConfigError(option, f"unknown {what} {name!r}; known: {', '.join(registry)}")
    return tuple(names)


def _fractions(text: str) -> tuple[float, ...]:
    values: list[float] = []
    for item in _split(text, "--fractions", "fraction"):
        try:
            value = float(item)
        except ValueError:
            raise ConfigError("--fractions", f"{item!r} is not a number") from None
        if not 0.0 < value < 1.0:  # also refuses nan
            raise ConfigError("--fractions", f"{item} is outside (0, 1)")
        if value not in values:
            values.append(value)
    return tuple(values)


@dataclass(frozen=True)
class MatrixSpec:
    """What to run: the base config and the grid.

    Build it with :meth:`parse`, which validates every name, fraction and cell config.

    Attributes
    ----------
    config
        The TOML config (``None`` for the offline default).
    overrides
        ``--set`` overrides applied to every cell.
    defences
        ``strategy.name`` values, in order; :data:`HONEST_ONLY` is the honest-only reference.
    attacks
        ``attack.name`` values, in order; ``none`` is the attack-free baseline.
    fractions
        ``attack.fraction`` values in (0, 1), in order.
    seeds
        Seeds per cell: ``train.seed`` runs over ``base_seed .. base_seed + seeds - 1``.
    base_seed
        ``train.seed`` of the base config.
    """

    config: Path | None
    overrides: tuple[str, ...]
    defences: tuple[str, ...]
    attacks: tuple[str, ...]
    fractions: tuple[float, ...]
    seeds: int = 1
    base_seed: int = 0

    @classmethod
    def parse(
        cls,
        config: Path | None,
        overrides: Sequence[str],
        *,
        attacks: str,
        defences: str,
        fractions: str,
        seeds: int = 1,
    ) -> MatrixSpec:
        """Validate the command's options and every cell's config; nothing is written.

        Parameters
        ----------
        config
            TOML config, or ``None`` for the defaults.
        overrides
            ``--set`` overrides (``strategy.name``, ``attack.name`` and ``attack.fraction``
            are the matrix's own and refused here; ``train.seed`` sets the first seed).
        attacks, defences, fractions
            Comma-separated lists.
        seeds
            Number of seeds, at least 1.

        Raises
        ------
        ConfigError
            An unknown name, an empty list, a fraction outside (0, 1), fewer than one seed, an
            override of a key the matrix sets, or an invalid config.
        """
        attack_names = _names(attacks, "--attacks", "attack", [ATTACK_FREE, *ATTACKS])
        defence_names = _names(defences, "--defences", "defence", [*STRATEGIES, HONEST_ONLY])
        values = _fractions(fractions)
        if seeds < 1:
            raise ConfigError("--seeds", f"must be at least 1 (got {seeds})")
        for item in overrides:
            key = item.partition("=")[0].strip()
            if key in _CELL_KEYS:
                raise ConfigError(key, f"is set per cell by {_CELL_KEYS[key]}; drop the --set")
        base = load_config(config, list(overrides))
        spec = cls(
            config=config,
            overrides=tuple(overrides),
            defences=defence_names,
            attacks=attack_names,
            fractions=values,
            seeds=seeds,
            base_seed=base.train.seed,
        )
        for cfg in spec.configs().values():
            check_names(cfg)
        return spec

    def cells(self) -> list[Cell]:
        """Every cell, defence-major: defence × attack × fraction × seed (the baseline once
        per defence and seed, with fraction 0)."""
        out: list[Cell] = []
        for defence in self.defences:
            for attack in self.attacks:
                fractions = (0.0,) if attack == ATTACK_FREE else self.fractions
                for fraction in fractions:
                    for s in range(self.seeds):
                        out.append(Cell(defence, attack, fraction, self.base_seed + s))
        return out

    def config_for(self, cell: Cell) -> Config:
        """The validated config of ``cell``: the base config, ``--set``, then the cell's keys."""
        return load_config(self.config, [*self.overrides, *cell.overrides()])

    def configs(self) -> dict[Cell, Config]:
        """Every cell's config, in grid order (raises :class:`ConfigError` on the first bad one)."""
        return {cell: self.config_for(cell) for cell in self.cells()}
