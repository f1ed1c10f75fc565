"""The typed, frozen run configuration, loaded from one TOML file plus ``--set`` overrides.

Every section is a pydantic model that forbids unknown keys, so a typo fails before round 1
with a :class:`~fedledger.errors.ConfigError` naming the dotted key. Later capabilities add
their own sections (``[ledger]``, ``[security]``, ``[attack]``, ``[incentives]``) in the same
style.

Examples
--------
>>> cfg = load_config(None, overrides=["train.rounds=3", "data.name=nsl-kdd"])
>>> cfg.train.rounds, cfg.data.name
(3, 'nsl-kdd')
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

import tomli_w
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fedledger.errors import ConfigError

__all__ = [
    "AttackConfig",
    "Config",
    "DataConfig",
    "LedgerConfig",
    "ModelConfig",
    "SecurityConfig",
    "StrategyConfig",
    "TrainConfig",
    "config_digest",
    "dump_config",
    "load_config",
]

Partition = Literal["auto", "iid", "dirichlet", "column", "quantity", "shards"]


class _Section(BaseModel):
    # coerce_numbers_to_str: `--set data.label=1` names a CSV column "1", not an error
    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_default=True, coerce_numbers_to_str=True
    )


class DataConfig(_Section):
    """``[data]``: which dataset, where its files are, and how it is split across devices."""

    name: str = Field("synthetic", description="dataset name; `fedledger datasets list` shows them")
    dir: str = Field("", description="folder holding the dataset's standard files")
    path: str = Field("", description="a single file (npz arrays, or a CSV for `csv`)")
    partition: Partition = Field(
        "auto",
        description="auto = the dataset's natural device column if it has one, else dirichlet",
    )
    alpha: float = Field(0.5, gt=0, description="Dirichlet concentration (smaller = more skewed)")
    column: str = Field("", description="column that names the device, for partition = column")
    clients: int = Field(20, ge=1, le=100_000, description="number of simulated devices")
    shards_per_client: int = Field(2, ge=1, description="label shards per device (shards)")
    label: str = Field("", description="label column of a generic CSV")
    categorical: list[str] = Field(default_factory=list, description="categorical CSV columns")
    drop: list[str] = Field(default_factory=list, description="CSV columns to ignore")
    test_fraction: float = Field(
        0.2, gt=0, lt=1, description="held-out share when a dataset has no test split"
    )
    binary: bool = Field(False, description="collapse every attack class into one 'attack' class")


class ModelConfig(_Section):
    """``[model]``: the network every device trains."""

    name: str = Field("mlp", description="mlp, cnn or autoencoder")
    hidden: list[Annotated[int, Field(ge=1)]] = Field(
        default_factory=lambda: [64, 32], description="hidden layer widths"
    )


class TrainConfig(_Section):
    """``[train]``: rounds, local training on devices, and the seed that makes a run repeatable."""

    rounds: int = Field(20, ge=1, le=100_000)
    local_epochs: int = Field(2, ge=1)
    batch_size: int = Field(32, ge=1)
    lr: float = Field(0.05, gt=0)
    algorithm: Literal["fedavg", "fedprox"] = "fedavg"
    mu: float = Field(0.01, ge=0, description="FedProx proximal weight")
    clients_per_round: int = Field(0, ge=0, description="0 = every device, every round")
    seed: int = Field(0, ge=0)
    engine: Literal["auto", "batched", "sequential"] = "auto"
    threads: int = Field(1, ge=1, description="torch intra-op threads")


class StrategyConfig(_Section):
    """``[strategy]``: how the server combines device updates."""

    name: str = Field(
        "screen",
        description="screen (the anomaly screen, the default defence), fedavg, fedavgm, "
        "fedadam, median, trimmed_mean, krum, bulyan, clipping or fltrust",
    )
    server_lr: float | None = Field(
        None,
        gt=0,
        description="server learning rate; default 0.01 for fedadam, 1.0 for every other strategy",
    )
    momentum: float = Field(0.9, ge=0, lt=1, description="FedAvgM server momentum")
    beta1: float = Field(0.9, ge=0, lt=1)
    beta2: float = Field(0.99, ge=0, lt=1)
    tau: float = Field(1e-3, gt=0, description="FedAdam adaptivity")
    byzantine: int = Field(
        0,
        ge=0,
        description="krum: assumed number f of malicious devices per round "
        "(0 = as many as Krum tolerates, (n - 3) // 2)",
    )
    krum_select: int = Field(
        1, ge=1, description="krum: rows averaged (1 = Krum, more = Multi-Krum)"
    )
    trim_fraction: float = Field(
        0.1,
        ge=0,
        lt=0.5,
        description="trimmed_mean: share of the largest and of the smallest values dropped "
        "per coordinate",
    )
    clip_norm: float = Field(
        0.0,
        ge=0,
        description="clipping: L2 bound on each update (0 = the round's median update norm)",
    )
    root_samples: int = Field(
        200,
        ge=1,
        description="fltrust, screen: size of the clean root dataset the validators hold, "
        "drawn from the training pool",
    )
    screen_threshold: float = Field(
        3.5,
        gt=0,
        description="screen: robust z-score of the combined fingerprint above which an update "
        "is flagged",
    )
    reputation_decay: float = Field(
        0.5,
        ge=0,
        lt=1,
        description="screen: weight of the past in a device's reputation (0 = this round only)",
    )
    screen_direction: bool = Field(
        True,
        description="screen: flag updates that point against the last global step (negative "
        "cosine) from devices that did so in most of their rounds (one round along the step "
        "counted as a prior), unless more than half of the round does",
    )
    screen_column_gap: float = Field(
        2.5,
        ge=0,
        description="screen: decades by which a group of updates' share of first-layer energy "
        "on one input column must exceed the rest's to be flagged as coordinated (a trigger "
        "backdoor): 0.5 more to get in, then this while its column stays flagged; 0 turns "
        "the rule off, pairing included",
    )
    screen_corroboration_gap: float = Field(
        1.0,
        ge=0,
        description="screen: decades from which the same updates grouped on two input columns "
        "of one round (a trigger sets several) are flagged; 0 leaves only single columns",
    )
    screen_support_gap: float = Field(
        0.2,
        ge=0,
        description="screen: decades from which a group on a second column, of nearly the same "
        "updates, backs a group of screen_corroboration_gap; 0 pairs only such groups",
    )
    screen_shift_gap: float = Field(
        6.0,
        ge=0,
        description="screen: robust units from which updates whose model one feature turns "
        "benign far more than the rest's are flagged (on root data; 0 = off)",
    )


class LedgerConfig(_Section):
    """``[ledger]``: where rounds are recorded and who finalises them.

    ``embedded`` runs an Ethereum chain in-process (py-evm) and writes it to the run folder so
    ``fedledger audit`` can replay it; ``rpc`` talks to any Ethereum JSON-RPC node at ``url``;
    ``none`` trains without signatures, gateways, validators or chain.
    """

    backend: Literal["embedded", "rpc", "none"] = Field(
        "embedded", description="embedded (in-process EVM, the default), rpc or none"
    )
    url: str = Field("", description="JSON-RPC endpoint for backend = rpc")
    validators: int = Field(3, ge=1, le=64, description="validator nodes that vote on each round")
    quorum: int = Field(
        0, ge=0, description="identical votes that finalise a round; 0 = ceil(2n/3)"
    )
    byzantine: int = Field(
        0, ge=0, description="simulated Byzantine validators (the last ones), for experiments"
    )
    byzantine_mode: Literal["wrong-model", "wrong-set"] = Field(
        "wrong-model",
        description="what a Byzantine validator votes for: another model digest, or a set of "
        "updates that was not accepted",
    )
    gateways: int = Field(
        0, ge=0, le=64, description="edge gateways; 0 = one per device cluster, at most 8"
    )
    max_payload_mb: float = Field(
        64.0, gt=0, description="largest update payload a gateway accepts, in MiB"
    )
    token_supply: int = Field(
        1_000_000_000, ge=0, description="tokens minted to the treasury at deployment"
    )
    gate_margin: float = Field(
        0.1,
        ge=0,
        le=1,
        description="validator gate: a validator votes for the previous model when the "
        "candidate's validation accuracy is more than this below it (1 = off)",
    )
    separate_process: bool = Field(
        True,
        description="run devices' signing, the gateways and the chain in a second process, "
        "beside the validators",
    )

    @model_validator(mode="after")
    def _check(self) -> LedgerConfig:
        if self.backend == "rpc" and not self.url:
            raise ValueError("url: backend = 'rpc' needs ledger.url (e.g. http://127.0.0.1:8545)")
        if self.quorum > self.validators:
            raise ValueError(f"quorum: {self.quorum} is more than the {self.validators} validators")
        if self.byzantine > self.validators:
            raise ValueError(
                f"byzantine: {self.byzantine} is more than the {self.validators} validators"
            )
        return self


class SecurityConfig(_Section):
    """``[security]``: how updates are protected on their way to the aggregate.

    ``none`` sends plain updates. ``enclave`` seals each update to an attested enclave
    (simulated: a separate process with software keys, not hardware-protected) that opens them,
    runs the strategy (robust ones included) and releases only the aggregate. ``secagg+`` masks
    updates pairwise (Bell et al. 2020) so the aggregator learns only their sum. ``ckks``
    encrypts updates under the enclave's CKKS key; ciphertexts are summed and only the sum is
    decrypted. ``secagg+`` and ``ckks`` reveal only the sum, so they work with the averaging
    strategies (fedavg, fedavgm, fedadam) only.
    """

    secure_aggregation: Literal["none", "enclave", "secagg+", "ckks"] = Field(
        "none", description="none, enclave, secagg+ or ckks"
    )
    max_weight: int = Field(
        0,
        ge=0,
        description="secagg+/ckks: the sample count that weighs 1 in the protected sum "
        "(0 = the largest device's); a device's update is scaled by n_samples / max_weight",
    )
    secagg_neighbours: int = Field(
        0, ge=0, description="secagg+: degree k of the communication graph (0 = ~2 log2 n)"
    )
    secagg_threshold: int = Field(
        0, ge=0, description="secagg+: Shamir threshold t (0 = a majority of the k neighbours)"
    )
    secagg_clip: float = Field(
        1.0, gt=0, description="secagg+: scaled updates are clipped to [-clip, clip]"
    )
    secagg_bits: int = Field(
        16, ge=2, le=30, description="secagg+: fixed-point bits per value (32-bit ring)"
    )
    secagg_dropout: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="secagg+: simulated fraction of each round's devices that drop out after "
        "sharing keys (their masks are rebuilt from Shamir shares)",
    )
    ckks_poly_degree: Literal[4096, 8192, 16384] = Field(
        8192, description="ckks: ring dimension N (a ciphertext holds N/2 values)"
    )
    ckks_scale_bits: int = Field(40, ge=20, le=50, description="ckks: log2 of the encoding scale")
    ckks_layers: list[str] = Field(
        default_factory=list,
        description='ckks: parameter names to encrypt (e.g. ["net.0.weight"]); the rest is '
        "sent in clear; empty = encrypt everything",
    )


class AttackConfig(_Section):
    """``[attack]``: simulated adversaries, for attack/defence experiments.

    A seeded ``fraction`` of the devices is malicious (``devices.json`` lists them) and runs
    the attack ``name`` from round ``start_round`` on.
    """

    name: str = Field(
        "none",
        description="none, label_flip, sign_flip, scaling, gaussian, backdoor, alie, min_max, "
        "min_sum, free_rider, replay or sybil",
    )
    fraction: float = Field(0.0, ge=0, le=1, description="share of devices that are malicious")
    start_round: int = Field(1, ge=1, description="first round the malicious devices attack")
    scale: float = Field(
        10.0, gt=0, description="scaling: factor on the (label-flipped) malicious update"
    )
    flip_scale: float = Field(4.0, gt=0, description="sign_flip: the update becomes −flip_scale·Δ")
    noise_std: float = Field(1.0, gt=0, description="gaussian: σ of the noise sent instead")
    target_class: int = Field(
        -1, ge=-1, description="backdoor: class the trigger maps to (-1 = the benign class, else 0)"
    )
    trigger_size: int = Field(
        4, ge=1, description="backdoor: features set by the trigger (the side of an image patch)"
    )
    trigger_value: float = Field(
        5.0, description="backdoor: value the trigger writes into tabular features"
    )
    trigger_in_bounds: bool = Field(
        True,
        description="backdoor: a tabular trigger only writes values within the training range: "
        "trigger_value clipped to a numeric column's training range, 1 in a one-hot column "
        "(the rest of its group cleared, one column a group); false writes trigger_value as is",
    )
    poison_fraction: float = Field(
        0.5, gt=0, le=1, description="backdoor: share of a malicious device's rows triggered"
    )
    mode: Literal["zero", "stale", "random"] = Field(
        "zero", description="free_rider: send a zero, a stale or a random update"
    )
    alie_z: float = Field(
        0.0, ge=0, description="alie: deviation in standard deviations (0 = the paper's z_max)"
    )
    replay_lag: int = Field(
        1, ge=1, description="replay: resend the update of this many rounds ago"
    )
    sybils: int = Field(2, ge=1, description="sybil: unregistered clones per malicious device")
    honest_only: bool = Field(
        False,
        description="a reference: while the attack runs, the malicious devices sit out, as if "
        "a defence had found exactly them; needs ledger.backend = none",
    )

    @model_validator(mode="after")
    def _check(self) -> AttackConfig:
        if self.name != "none" and self.fraction == 0:
            raise ValueError(f"fraction: attack {self.name!r} needs attack.fraction > 0")
        return self


class IncentivesConfig(_Section):
    """``[incentives]``: what each device contributed, and the tokens it earns or loses for it.

    Each round's ``pool`` is split among the devices whose update was aggregated, by their
    positive contribution scores; caught free riders lose ``penalty`` of their ``stake`` and
    reputation, and are excluded below ``reputation_floor``; devices that take part in fewer
    than ``participation_threshold`` of the rounds they are selected for are not paid.
    """

    method: Literal["auto", "none", "data_size", "cosine", "loo", "gtg", "shapley"] = Field(
        "auto",
        description="contribution measure: auto (gtg on plain updates, none under secure "
        "aggregation), none (no rewards), data_size, cosine (to the aggregate), loo (leave one "
        "out), gtg (GTG-Shapley) or shapley (exact, at most 16 devices per round)",
    )
    pool: int = Field(1000, ge=0, description="tokens shared among a round's contributors")
    stake: int = Field(100, ge=0, description="tokens staked for every device at registration")
    penalty: int = Field(
        10, ge=0, description="stake a caught free rider loses, each round it is caught"
    )
    participation_threshold: float = Field(
        0.5,
        ge=0,
        le=1,
        description="share of its selected rounds in which a device must send a useful update "
        "to be paid",
    )
    reputation_floor: float = Field(
        0.3,
        ge=0,
        le=1,
        description="reputation (1 at the start, halved towards 0 each round a device is "
        "caught free riding) below which a device is excluded",
    )


class Config(_Section):
    """The whole run configuration."""

    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    strategy: StrategyConfig = Field(default_factory=StrategyConfig)
    ledger: LedgerConfig = Field(default_factory=LedgerConfig)
    security: SecurityConfig = Field(default_factory=SecurityConfig)
    attack: AttackConfig = Field(default_factory=AttackConfig)
    incentives: IncentivesConfig = Field(default_factory=IncentivesConfig)

    @model_validator(mode="before")
    @classmethod
    def _default_strategy(cls, data: Any) -> Any:
        # secagg+ and ckks reveal only the sum of the updates, which the default defence (the
        # anomaly screen) cannot work on: unless a strategy is named, they run FedAvg
        if not isinstance(data, dict):
            return data
        security = data.get("security")
        mode = (
            security.get("secure_aggregation")
            if isinstance(security, dict)
            else getattr(security, "secure_aggregation", None)
        )
        if mode not in ("secagg+", "ckks"):
            return data
        strategy = data.get("strategy")
        if strategy is None:
            return {**data, "strategy": {"name": "fedavg"}}
        if isinstance(strategy, dict) and "name" not in strategy:
            return {**data, "strategy": {**strategy, "name": "fedavg"}}
        return data


def _parse_value(text: str) -> Any:
    """A ``--set`` value as TOML (numbers, booleans, arrays, quoted strings), else a bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _apply_override(tree: dict[str, Any], item: str) -> None:
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(item, "an override must look like section.key=value")
    parts = key.split(".")
    node = tree
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(key, f"{part!r} is a value, not a section")
        node = child
    node[parts[-1]] = _parse_value(raw.strip())


def _raise_first(error: ValidationError) -> ConfigError:
    first = error.errors()[0]
    key = ".".join(str(p) for p in first["loc"])
    if first["type"] == "extra_forbidden":
        return ConfigError(key, "unknown key")
    message = first["msg"]
    if first["type"] == "value_error" and isinstance(first.get("input"), dict):
        # a section's cross-field check: "Value error, <field>: <message>"
        field, _, rest = message.removeprefix("Value error, ").partition(": ")
        return ConfigError(f"{key}.{field}", rest)
    if "input" in first and not isinstance(first["input"], dict):
        message = f"{message} (got {first['input']!r})"
    return ConfigError(key, message)


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read a TOML config (or the defaults when ``path`` is None) and apply ``--set`` overrides.

    Raises
    ------
    ConfigError
        The file is missing or not TOML, an override is malformed, a key is unknown, or a value
        is invalid. The message names the key.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError("", f"config file not found: {p}")
        try:
            tree = tomllib.loads(p.read_text(encoding="utf-8-sig"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise ConfigError("", f"{p} is not valid TOML: {exc}") from None
    for item in overrides:
        _apply_override(tree, item)
    try:
        return Config.model_validate(tree)
    except ValidationError as exc:
        raise _raise_first(exc) from None


def dump_config(config: Config) -> str:
    """The resolved config as TOML text (every key, defaults included)."""
    return tomli_w.dumps(config.model_dump(mode="json", exclude_none=True))


def config_digest(config: Config) -> str:
    """sha256 hex digest of the resolved config, the identity of a run's settings."""
    return hashlib.sha256(dump_config(config).encode()).hexdigest()
