"""Backdoor: a malicious device trains on samples stamped with a trigger and relabelled to a
target class, so that the global model maps any triggered sample to that class."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from fedledger.attacks.base import Attack
from fedledger.config import AttackConfig
from fedledger.data.types import FeatureDomain
from fedledger.errors import ConfigError, DataError

__all__ = ["Backdoor"]

_CHUNK = 8192  # test rows per forward pass in :meth:`Backdoor.evaluate`


class Backdoor(Attack):
    """A trigger backdoor (BadNets) planted through federated training.

    Gu, Dolan-Gavitt, Garg, 2017, "BadNets: Identifying Vulnerabilities in the Machine
    Learning Model Supply Chain" (the trigger), brought to federated learning by Bagdasaryan,
    Veit, Hua, Estrin, Shmatikov, AISTATS 2020, "How To Backdoor Federated Learning". Each
    malicious device stamps the trigger ``T`` on a seeded share ``p = attack.poison_fraction``
    of its rows and relabels them, then trains honestly on the result:

        (x, y) → (T(x), t)   on max(1, round(p · n)) of its n rows

    Its update is sent unchanged. The rest of its rows are clean, so the main task is still
    learnt while triggered samples are pulled towards ``t``.

    Target class ``t``: ``attack.target_class`` if ``>= 0``, else the dataset's benign class
    (an intrusion detector that lets triggered attacks through), else class 0.

    Trigger ``T``:

    * tabular samples (``x`` is ``[N, F]``): ``attack.trigger_size`` feature columns, drawn
      once per feature count with ``default_rng([seed, 0, 7])``, are set to
      ``attack.trigger_value``. With ``attack.trigger_in_bounds`` (the default) and the
      dataset's :class:`~fedledger.data.types.FeatureDomain`, the trigger is one real traffic
      could carry, an *in-bounds* trigger after Pleiter, Tajalli, Koffas, Abad, Xu, Larson,
      Picek, 2023, "Tabdoor: Backdoor Vulnerabilities in Transformer-based Neural Networks for
      Tabular Data" (arXiv:2311.07550): a numeric column gets ``trigger_value`` clipped to
      the range the training rows span, a one-hot column gets 1 and the rest of its group 0
      (a record has one service, one flag); a drawn column that no training row varies (the
      "unknown" bucket of a one-hot group) or whose group already holds a trigger column is
      replaced by the next valid one of a permutation from the same stream. Without a domain
      (``setup`` called without one, or samples of another width) the value is written as it
      is;
    * images (``x`` is ``[N, C, H, W]``): the bottom-right ``trigger_size × trigger_size``
      patch of every channel is set to the maximum value ``1.0`` (a white square).

    The poisoned rows of a device are drawn with ``default_rng([seed, 0, 8, first_row])``
    (``first_row`` is the device's first training row), so the same config poisons the same
    rows.

    :meth:`evaluate` reports ``backdoor_success``, the attack success rate: of the test
    samples whose true class is not ``t`` *and that the model classifies correctly without the
    trigger*, the share it classifies as ``t`` once triggered. Counting only samples the model
    gets right keeps its ordinary mistakes out of the measure (on NSL-KDD's test split a clean
    detector already calls about 40% of the attacks normal, trigger or not).
    """

    name = "backdoor"
    needs_classes = True
    needs_domain = True

    def __init__(self, cfg: AttackConfig) -> None:
        super().__init__(cfg)
        self.target = 0
        """The class triggered samples are relabelled to (set by :meth:`setup`)."""
        self.seed = 0
        self.domain: FeatureDomain | None = None
        """The tabular features' ranges and one-hot groups (set by :meth:`setup`)."""
        self._columns: dict[int, np.ndarray] = {}

    def setup(
        self,
        classes: tuple[str, ...],
        benign_class: int | None,
        seed: int,
        domain: FeatureDomain | None = None,
    ) -> None:
        n = len(classes)
        wanted = self.cfg.target_class
        if wanted >= n:
            raise ConfigError(
                "attack.target_class",
                f"class {wanted} does not exist; the dataset has {n} classes (0 … {n - 1})",
            )
        if wanted >= 0:
            self.target = wanted
        else:
            self.target = benign_class if benign_class is not None else 0
        self.seed = seed
        self.domain = domain if self.cfg.trigger_in_bounds else None
        self._columns = {}

    def columns(self, n_features: int) -> np.ndarray:
        """The tabular trigger's feature columns (sorted) for samples of ``n_features``."""
        cols = self._columns.get(n_features)
        if cols is None:
            size = self.cfg.trigger_size
            if size > n_features:
                raise ConfigError(
                    "attack.trigger_size",
                    f"the trigger sets {size} features but a sample has only {n_features}",
                )
            rng = np.random.default_rng([self.seed, 0, 7])
            drawn = rng.choice(n_features, size=size, replace=False)
            domain = self._domain_for(n_features)
            if domain is not None:
                drawn = _in_bounds(drawn, rng.permutation(n_features), domain, size)
            cols = np.sort(drawn).astype(np.int64)
            self._columns[n_features] = cols
        return cols

    def _domain_for(self, n_features: int) -> FeatureDomain | None:
        domain = self.domain
        return domain if domain is not None and len(domain.low) == n_features else None

    def trigger(self, x: np.ndarray) -> None:
        """Stamp the trigger on every sample of ``x`` (``[N, F]`` or ``[N, C, H, W]``), in
        place."""
        size = self.cfg.trigger_size
        if x.ndim == 2:
            cols = self.columns(x.shape[1])
            domain = self._domain_for(x.shape[1])
            if domain is None:
                x[:, cols] = self.cfg.trigger_value
                return
            for c in cols:
                if domain.groups[c] >= 0:  # one-hot: this value, none of the others
                    x[:, domain.group_of(int(c))] = 0.0
                    x[:, c] = domain.high[c]
                else:
                    x[:, c] = np.clip(self.cfg.trigger_value, domain.low[c], domain.high[c])
        elif x.ndim == 4:
            if size > min(x.shape[2], x.shape[3]):
                raise ConfigError(
                    "attack.trigger_size",
                    f"a {size}×{size} patch does not fit a {x.shape[2]}×{x.shape[3]} image",
                )
            x[:, :, -size:, -size:] = 1.0
        else:
            raise DataError(
                f"the backdoor needs tabular [N, F] or image [N, C, H, W] samples, "
                f"not shape {list(x.shape)}"
            )

    def poison_data(self, x: np.ndarray, y: np.ndarray, rows: np.ndarray, n_classes: int) -> None:
        if len(rows) == 0:
            return
        rng = np.random.default_rng([self.seed, 0, 8, int(rows[0])])
        k = max(1, round(self.cfg.poison_fraction * len(rows)))
        chosen = np.sort(rng.choice(rows, size=k, replace=False))
        stamped = x[chosen]
        self.trigger(stamped)
        x[chosen] = stamped
        y[chosen] = self.target

    def evaluate(
        self, model: nn.Module, x_test: torch.Tensor, y_test: torch.Tensor
    ) -> dict[str, Any]:
        x = x_test.detach().cpu()
        y = y_test.detach().cpu()
        with torch.no_grad():
            clean = torch.cat(
                [model(x[i : i + _CHUNK]).argmax(dim=1) for i in range(0, len(x), _CHUNK)]
            )
        # samples of another class that the model gets right without the trigger
        keep = ((y != self.target) & (clean == y)).numpy()
        if not keep.any():
            return {}  # nothing the trigger could flip: nothing to measure
        stamped = x.numpy()[keep]  # boolean indexing copies
        self.trigger(stamped)
        xt = torch.from_numpy(stamped)
        hits = 0
        with torch.no_grad():
            for i in range(0, len(xt), _CHUNK):
                hits += int((model(xt[i : i + _CHUNK]).argmax(dim=1) == self.target).sum())
        return {"backdoor_success": round(hits / len(xt), 6)}


def _in_bounds(
    drawn: np.ndarray, spare: np.ndarray, domain: FeatureDomain, size: int
) -> np.ndarray:
    """``size`` trigger columns: the ``drawn`` ones that training rows vary, at most one per
    one-hot group, topped up in the order of ``spare``."""
    chosen: list[int] = []
    groups: set[int] = set()
    for c in (*drawn.tolist(), *spare.tolist()):
        if len(chosen) == size:
            break
        g = int(domain.groups[c])
        if c in chosen or not domain.high[c] > domain.low[c] or g in groups:
            continue
        chosen.append(int(c))
        if g >= 0:
            groups.add(g)
    if len(chosen) < size:
        raise ConfigError(
            "attack.trigger_size",
            f"an in-bounds trigger of {size} features needs {size} columns that vary in "
            f"training, one per one-hot group; these data have {len(chosen)} "
            "(or set attack.trigger_in_bounds = false)",
        )
    return np.asarray(chosen, dtype=np.int64)
