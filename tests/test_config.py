"""The typed config: defaults, overrides, and one-line errors naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fedledger.config import config_digest, dump_config, load_config
from fedledger.errors import ConfigError


def test_defaults_are_the_offline_default_run() -> None:
    cfg = load_config(None)
    assert (cfg.data.name, cfg.model.name, cfg.strategy.name) == ("synthetic", "mlp", "screen")


def test_overrides_parse_toml_values() -> None:
    cfg = load_config(
        None,
        [
            "train.rounds=3",
            "model.hidden=[16, 8]",
            "data.name=nsl-kdd",
            "data.binary=true",
            "train.lr=1e-2",
            'data.dir="/tmp/x y"',
        ],
    )
    assert cfg.train.rounds == 3
    assert cfg.model.hidden == [16, 8]
    assert cfg.data.name == "nsl-kdd"
    assert cfg.data.binary is True
    assert cfg.train.lr == 0.01
    assert cfg.data.dir == "/tmp/x y"


def test_file_then_overrides(tmp_path: Path) -> None:
    p = tmp_path / "c.toml"
    p.write_text('[train]\nrounds = 4\nseed = 7\n[data]\nname = "digits"\n')
    cfg = load_config(p, ["train.rounds=5"])
    assert (cfg.train.rounds, cfg.train.seed, cfg.data.name) == (5, 7, "digits")


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        (["train.rounds=0"], "train.rounds"),
        (["train.lr=fast"], "train.lr"),
        (["trian.rounds=3"], "trian"),
        (["train.round=3"], "train.round"),
        (["data.partition=random"], "data.partition"),
        (["model.hidden=[64, 0]"], "model.hidden.1"),
        (["train.algorithm=scaffold"], "train.algorithm"),
        (["rounds"], "rounds"),
    ],
)
def test_bad_input_names_the_key(overrides: list[str], key: str) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(None, overrides)
    assert info.value.key == key
    assert "\n" not in str(info.value)


def test_missing_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[train\nrounds = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad)


def test_dump_round_trips_and_digest_is_stable(tmp_path: Path) -> None:
    cfg = load_config(None, ["train.rounds=2", "strategy.name=fedadam"])
    p = tmp_path / "r.toml"
    p.write_text(dump_config(cfg))
    again = load_config(p)
    assert again == cfg
    assert config_digest(again) == config_digest(cfg)
    assert config_digest(load_config(None, ["train.rounds=3"])) != config_digest(cfg)


def test_numbers_are_accepted_for_string_keys_and_a_bom_is_fine(tmp_path: Path) -> None:
    assert load_config(None, ["data.label=1"]).data.label == "1"
    p = tmp_path / "bom.toml"
    p.write_bytes("\ufeff[train]\nrounds = 2\n".encode())
    assert load_config(p).train.rounds == 2


def test_sum_only_secure_modes_default_to_fedavg_unless_a_strategy_is_named() -> None:
    """secagg+ and ckks reveal only the sum, so the default anomaly screen gives way to FedAvg;
    a strategy named explicitly is kept (and refused later if it needs each update)."""
    for mode in ("secagg+", "ckks"):
        assert load_config(None, [f"security.secure_aggregation={mode}"]).strategy.name == "fedavg"
        named = load_config(None, [f"security.secure_aggregation={mode}", "strategy.name=median"])
        assert named.strategy.name == "median"
    assert load_config(None, ["security.secure_aggregation=enclave"]).strategy.name == "screen"
