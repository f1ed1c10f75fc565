"""W1 on Flower's Simulation Engine (flwr 1.41, Ray backend), trained exactly like w1_plain.py.

Uses Flower's message API: a ``ServerApp`` whose ``@app.main()`` runs
``flwr.serverapp.strategy.FedAvg.start(grid, ...)`` (weighted by the clients' ``num-examples``,
``fraction_train=1.0``, all 100 nodes every round, federated evaluation off) with a centralized
``evaluate_fn`` on the test split, and a ``ClientApp`` whose ``@app.train()`` function trains one
local epoch with the same model, batches and seeds as the plain loop (it imports them from
``w1_plain``). One virtual SuperNode per W1 client; 1 CPU per client; 1 torch thread.

Seconds per round are the gaps between the timestamps that ``evaluate_fn`` records after each
round (round 1 is measured from the initial evaluation, before which Ray may still be starting
its actors); the median is the headline number.

Run it with the Flower venv (``bash benchmarks/setup_flower_env.sh`` creates it)::

    benchmarks/.venv-flower/bin/python benchmarks/w1_flower.py --rounds 10 --out flower.json

Prints one JSON line per round (``round``, ``seconds``, ``accuracy``) and writes the result JSON.
This file is imported as the module ``w1_flower`` inside Ray's workers, so the client functions
and their data cache live at module level (pickled by reference, loaded once per worker).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from flwr.app import ArrayRecord, ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp
from flwr.serverapp import Grid, ServerApp
from flwr.serverapp.strategy import FedAvg
from flwr.simulation import run_simulation
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from w1_plain import (
    DEFAULT_NPZ,
    SHUFFLES,
    TreeRssSampler,
    accuracy,
    batch_order,
    make_model,
    summarise,
    train_one_epoch,
)

# --------------------------------------------------------------------------------------------
# Client side (runs inside Ray actors; everything cached per worker process)
# --------------------------------------------------------------------------------------------

_CLIENT_CACHE: dict[str, Any] = {}


def _client_data(npz: str) -> dict[str, Any]:
    """Every W1 client's shard and a reusable model, loaded once per worker process."""
    data = _CLIENT_CACHE.get(npz)
    if data is None:
        torch.set_num_threads(1)
        with np.load(npz) as arrays:
            x_train = torch.from_numpy(arrays["x_train"])
            y_train = torch.from_numpy(arrays["y_train"]).long()
            client = arrays["client"]
            n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
        client_ids = [int(c) for c in np.unique(client)]
        shards = {}
        for cid in client_ids:
            idx = torch.from_numpy(np.flatnonzero(client == cid))
            shards[cid] = (x_train[idx].contiguous(), y_train[idx].contiguous())
        data = {
            "client_ids": client_ids,
            "shards": shards,
            "model": make_model(x_train.shape[1], n_classes),
        }
        _CLIENT_CACHE.clear()
        _CLIENT_CACHE[npz] = data
    return data


def _load_partition(
    npz: str, partition_id: int
) -> tuple[int, torch.Tensor, torch.Tensor, nn.Module]:
    """The common tutorial pattern: read the file and take this node's partition, every call."""
    torch.set_num_threads(1)
    with np.load(npz) as arrays:
        client = arrays["client"]
        cid = int(np.unique(client)[partition_id])
        mask = client == cid
        x = torch.from_numpy(arrays["x_train"][mask])
        y = torch.from_numpy(arrays["y_train"][mask]).long()
        n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
    return cid, x, y, make_model(x.shape[1], n_classes)


client_app = ClientApp()


@client_app.train()
def client_train(msg: Message, context: Context) -> Message:
    """One local epoch on this node's W1 client, exactly as in w1_plain.run."""
    config = msg.content["config"]
    partition_id = int(context.node_config["partition-id"])
    model: nn.Module
    if bool(config["reload-data"]):
        cid, x, y, model = _load_partition(str(config["npz"]), partition_id)
    else:
        data = _client_data(str(config["npz"]))
        cid = data["client_ids"][partition_id]
        x, y = data["shards"][cid]
        model = data["model"]
    model.load_state_dict(msg.content["arrays"].to_torch_state_dict())
    rnd = int(config["server-round"])
    perm = batch_order(int(config["seed"]), rnd, cid, x.shape[0], str(config["shuffle"]))
    train_one_epoch(model, x, y, perm)
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord({"num-examples": int(x.shape[0])}),
        }
    )
    return Message(content=content, reply_to=msg)


# --------------------------------------------------------------------------------------------
# Server side (runs in a thread of the driver process)
# --------------------------------------------------------------------------------------------


def build_server_app(
    npz: Path,
    rounds: int,
    seed: int,
    record: dict[str, Any],
    reload_data: bool = False,
    shuffle: str = "fedledger",
) -> ServerApp:
    """A ServerApp running message-API FedAvg over every node, with centralized evaluation."""
    with np.load(npz) as arrays:
        x_test = torch.from_numpy(arrays["x_test"])
        y_test = torch.from_numpy(arrays["y_test"]).long()
        n_features = int(arrays["x_train"].shape[1])
        n_classes = int(max(arrays["y_train"].max(), arrays["y_test"].max()) + 1)
        n_clients = len(np.unique(arrays["client"]))
    record["clients"] = n_clients
    server_model = make_model(n_features, n_classes)
    timestamps: list[float] = record.setdefault("timestamps", [])
    history: list[dict[str, Any]] = record.setdefault("rounds", [])

    def evaluate_fn(server_round: int, arrays: ArrayRecord) -> MetricRecord:
        server_model.load_state_dict(arrays.to_torch_state_dict())
        acc = accuracy(server_model, x_test, y_test)
        now = time.perf_counter()
        if server_round > 0:
            row = {
                "round": server_round,
                "seconds": round(now - timestamps[-1], 4),
                "accuracy": round(acc, 6),
            }
            history.append(row)
            print(json.dumps(row), flush=True)
        timestamps.append(now)
        return MetricRecord({"accuracy": acc})

    app = ServerApp()

    @app.main()
    def main(grid: Grid, context: Context) -> None:
        torch.set_num_threads(1)
        strategy = FedAvg(
            fraction_train=1.0,
            fraction_evaluate=0.0,  # centralized evaluation only, like the plain loop
            min_train_nodes=n_clients,
            min_available_nodes=n_clients,
            weighted_by_key="num-examples",
        )
        strategy.start(
            grid=grid,
            initial_arrays=ArrayRecord(server_model.state_dict()),
            num_rounds=rounds,
            train_config=ConfigRecord(
                {
                    "npz": str(npz),
                    "seed": seed,
                    "shuffle": shuffle,
                    "reload-data": reload_data,
                }
            ),
            evaluate_fn=evaluate_fn,
        )

    return app


def run(
    npz: Path,
    rounds: int,
    seed: int = 0,
    cpus_per_client: float = 1.0,
    reload_data: bool = False,
    shuffle: str = "fedledger",
) -> dict[str, Any]:
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("MKL_NUM_THREADS", "1")
    sampler = TreeRssSampler().start()
    record: dict[str, Any] = {}
    server_app = build_server_app(npz.resolve(), rounds, seed, record, reload_data, shuffle)
    import w1_flower  # this file as an importable module, so Ray workers unpickle by reference

    t0 = time.perf_counter()
    run_simulation(
        server_app=server_app,
        client_app=w1_flower.client_app,
        num_supernodes=record["clients"],
        backend_config={"client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0}},
    )
    wall = time.perf_counter() - t0
    history = record.get("rounds", [])
    if len(history) != rounds:
        raise RuntimeError(f"Flower finished {len(history)} of {rounds} rounds (see log above)")
    import flwr
    import ray

    return {
        **summarise("flower-sim", history, sampler),
        "wall_seconds": round(wall, 2),
        "clients": record["clients"],
        "api": "message API: flwr.serverapp.ServerApp @main + flwr.serverapp.strategy.FedAvg"
        ".start(grid, ...), flwr.clientapp.ClientApp @train, flwr.simulation.run_simulation",
        "client_resources": {"num_cpus": cpus_per_client, "num_gpus": 0.0},
        "shuffle": shuffle,
        "client_data": (
            "reloaded from the npz in every call"
            if reload_data
            else "loaded once per Ray worker and cached"
        ),
        "flwr": flwr.__version__,
        "ray": ray.__version__,
        "torch": torch.__version__,
        "python": sys.version.split()[0],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npz", type=Path, default=DEFAULT_NPZ, help="W1 arrays (make_w1.py)")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="seed of the batch permutations")
    parser.add_argument("--cpus-per-client", type=float, default=1.0)
    parser.add_argument(
        "--reload-data",
        action="store_true",
        help="clients reload the npz in every call instead of caching it per Ray worker "
        "(the common tutorial pattern; much slower)",
    )
    parser.add_argument(
        "--shuffle", choices=SHUFFLES, default="fedledger", help="batch order (batch_order)"
    )
    parser.add_argument("--out", type=Path, default=None, help="write the result JSON here")
    args = parser.parse_args(argv)
    if not args.npz.is_file():
        print(f"error: W1 arrays not found: {args.npz}", file=sys.stderr)
        return 2
    logging.getLogger("ray").setLevel(logging.WARNING)
    result = run(
        args.npz,
        args.rounds,
        args.seed,
        args.cpus_per_client,
        args.reload_data,
        args.shuffle,
    )
    if args.out is not None:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(
        f"flower-sim: {result['seconds_per_round_median']:.3f} s/round (median), "
        f"final accuracy {result['final_accuracy']:.4f}, peak RSS {result['peak_rss_mb']:.0f} MB",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
