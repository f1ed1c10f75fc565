"""Header CSV loaders: generic csv, UNSW-NB15, TON_IoT (union of device columns), CIC-IoT2023."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fedledger.config import DataConfig
from fedledger.data import build_federated
from fedledger.data.cic_iot2023 import load_cic_iot2023
from fedledger.data.generic_csv import load_csv
from fedledger.data.ton_iot import load_ton_iot
from fedledger.data.unsw_nb15 import load_unsw_nb15
from fedledger.errors import ConfigError, DataError, DatasetNotFoundError
from tests.data.files import feature_csv, write_text


def test_csv_label_required(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "x,y\n1,a\n")
    with pytest.raises(ConfigError, match=r"data\.label"):
        load_csv(DataConfig(name="csv", path=str(path)))


def test_csv_categorical_drop_and_no_benign(tmp_path: Path, rng: np.random.Generator) -> None:
    text = feature_csv(
        rng, 20, 2, {"id": ["1", "2"], "kind": ["a", "b", "c"], "target": ["cat", "dog"]}
    )
    path = write_text(tmp_path / "a.csv.gz", text)
    raw = load_csv(
        DataConfig(name="csv", path=str(path), label="target", categorical=["kind"], drop=["id"])
    )
    assert raw.numeric_names == ("f0", "f1") and raw.categorical_names == ("kind",)
    assert raw.classes == ("cat", "dog") and raw.benign_class is None


def test_csv_folder_and_benign_first(tmp_path: Path, rng: np.random.Generator) -> None:
    for name in ("a.csv", "b.csv.gz"):
        write_text(tmp_path / name, feature_csv(rng, 10, 2, {"y": ["DoS", "BENIGN"]}))
    raw = load_csv(DataConfig(name="csv", dir=str(tmp_path), label="y"))
    assert raw.classes == ("BENIGN", "DoS") and raw.benign_class == 0 and len(raw.train) == 20


def test_csv_non_numeric_value(tmp_path: Path) -> None:
    path = write_text(tmp_path / "a.csv", "x,y\n1,benign\nhello,attack\n")
    with pytest.raises(DataError, match=r"a\.csv: line 3: x: 'hello' is not a number"):
        load_csv(DataConfig(name="csv", path=str(path), label="y"))
    with pytest.raises(DataError, match="no column 'z'"):
        load_csv(DataConfig(name="csv", path=str(path), label="z"))


def _unsw(folder: Path, rng: np.random.Generator, n: int) -> str:
    header = "id,dur,proto,service,state,spkts,sbytes,attack_cat,label"
    cats = ["Normal", "Exploits", "Fuzzers", "DoS"]
    lines = [header]
    for i in range(n):
        cat = cats[i % 4]
        lines.append(
            f"{i},{rng.random():.3f},{rng.choice(['tcp', 'udp'])},-,FIN,"
            f"{rng.integers(1, 9)},{rng.integers(10, 999)},{cat},{int(cat != 'Normal')}"
        )
    return "\n".join(lines) + "\n"


def test_unsw(tmp_path: Path, rng: np.random.Generator) -> None:
    write_text(tmp_path / "UNSW_NB15_training-set.csv", _unsw(tmp_path, rng, 40))
    write_text(tmp_path / "UNSW_NB15_testing-set.csv.gz", _unsw(tmp_path, rng, 12))
    raw = load_unsw_nb15(DataConfig(name="unsw-nb15", dir=str(tmp_path)))
    assert raw.classes == ("Normal", "DoS", "Exploits", "Fuzzers") and raw.benign_class == 0
    assert raw.numeric_names == ("dur", "spkts", "sbytes")
    assert raw.categorical_names == ("proto", "service", "state")
    assert raw.test is not None and len(raw.test) == 12
    fed = build_federated(
        DataConfig(name="unsw-nb15", dir=str(tmp_path), binary=True, clients=2), seed=0
    )
    assert fed.classes == ("Normal", "attack")


def test_unsw_missing_test_file(tmp_path: Path, rng: np.random.Generator) -> None:
    write_text(tmp_path / "UNSW_NB15_training-set.csv", _unsw(tmp_path, rng, 4))
    with pytest.raises(DatasetNotFoundError, match=r"UNSW_NB15_testing-set\.csv"):
        load_unsw_nb15(DataConfig(name="unsw-nb15", dir=str(tmp_path)))


def test_ton_iot_union(tmp_path: Path) -> None:
    write_text(
        tmp_path / "Train_Test_IoT_Fridge.csv",
        "date,time,fridge_temperature,temp_condition,label,type\n"
        "1-Apr-19,10:00:01,9.0,high,0,normal\n"
        "1-Apr-19,10:00:02,2.5,low,1,ddos\n",
    )
    write_text(
        tmp_path / "Train_Test_IoT_Garage_Door.csv.gz",
        "date,time,door_state,sphone_signal,label,type\n"
        "1-Apr-19,10:00:03,open,true,0,normal\n"
        "1-Apr-19,10:00:04,closed,false,1,backdoor\n"
        "1-Apr-19,10:00:05,closed,1,1,ddos\n",
    )
    raw = load_ton_iot(DataConfig(name="ton-iot", dir=str(tmp_path)))
    assert raw.classes == ("normal", "backdoor", "ddos") and raw.benign_class == 0
    assert raw.numeric_names == ("fridge_temperature",)
    assert raw.categorical_names == ("temp_condition", "door_state", "sphone_signal")
    assert raw.train.groups is not None
    assert raw.train.groups.tolist() == ["Fridge"] * 2 + ["Garage_Door"] * 3
    assert raw.train.numeric[2:, 0].tolist() == [0.0, 0.0, 0.0]  # absent feature = 0
    assert raw.train.categorical[0].tolist() == ["high", "", ""]
    fed = build_federated(DataConfig(name="ton-iot", dir=str(tmp_path), test_fraction=0.3), 0)
    assert fed.device_names == ("Fridge", "Garage_Door")
    assert fed.feature_names[0] == "fridge_temperature"
    for col in ("temp_condition", "door_state", "sphone_signal"):
        assert f"{col}=<unknown>" in fed.feature_names


def test_cic_iot2023(tmp_path: Path, rng: np.random.Generator) -> None:
    labels = ["DDoS-ICMP_Flood", "BenignTraffic", "Recon-PortScan"]
    for name in ("part-0.csv", "part-1.csv.gz"):
        text = feature_csv(rng, 9, 4, {"label": labels})
        write_text(tmp_path / name, text.replace("f0", "flow_duration"))
    raw = load_cic_iot2023(DataConfig(name="cic-iot2023", dir=str(tmp_path)))
    assert raw.classes == ("BenignTraffic", "DDoS-ICMP_Flood", "Recon-PortScan")
    assert raw.benign_class == 0 and len(raw.train) == 18


def test_cic_non_finite_values_are_counted(tmp_path: Path) -> None:
    write_text(
        tmp_path / "p.csv",
        "a,b,label\n1,inf,BenignTraffic\nnan,2,DDoS\n3,4,DDoS\n"
        "5,6,BenignTraffic\n7,,DDoS\n8,9,BenignTraffic\n",
    )
    fed = build_federated(
        DataConfig(
            name="cic-iot2023", dir=str(tmp_path), clients=2, partition="iid", test_fraction=0.3
        ),
        seed=0,
    )
    assert fed.nonfinite == 3 and np.all(np.isfinite(fed.x_train))


@pytest.mark.parametrize(
    ("extra", "key", "role"),
    [
        ({"categorical": ["target"]}, "data.categorical", "label"),
        ({"drop": ["TARGET"]}, "data.drop", "label"),
        ({"column": "site", "categorical": ["site"]}, "data.categorical", "device"),
        ({"column": "site", "drop": ["site"]}, "data.drop", "device"),
        ({"column": "target"}, "data.column", "label"),
    ],
)
def test_csv_label_or_device_column_cannot_be_a_feature(
    tmp_path: Path, rng: np.random.Generator, extra: dict[str, object], key: str, role: str
) -> None:
    text = feature_csv(rng, 20, 2, {"site": ["s1", "s2"], "target": ["cat", "dog"]})
    path = write_text(tmp_path / "a.csv", text)
    cfg = DataConfig.model_validate({"name": "csv", "path": str(path), "label": "target", **extra})
    with pytest.raises(ConfigError, match=rf"^{key}: '\w+' is the {role} column") as info:
        load_csv(cfg)
    assert info.value.key == key


def test_single_split_dataset_is_public() -> None:
    from fedledger.data import tabular

    assert "single_split_dataset" in tabular.__all__
