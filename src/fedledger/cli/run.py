"""``fedledger run``: train, checkpoint every round, write the report."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from fedledger.assemble import prepare_run
from fedledger.cli.common import console, friendly_errors
from fedledger.cli.progress import RichRoundListener
from fedledger.config import Config, load_config
from fedledger.errors import ConfigError
from fedledger.fl.run_folder import RunFolder
from fedledger.report import write_report

__all__ = ["run"]


def _new_run_dir() -> Path:
    base = Path("runs") / datetime.now().strftime("%Y%m%d-%H%M%S")
    path, n = base, 1
    while path.exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _resume_config(folder: RunFolder, overrides: list[str]) -> Config:
    """The folder's config; only ``train.rounds`` may change (to extend a run). A folder
    whose config.toml lacks a key of this version is refused until it names it
    (:meth:`RunFolder.config_keys_missing`)."""
    for item in overrides:
        key = item.partition("=")[0].strip()
        if key != "train.rounds":
            raise ConfigError(key, "cannot be changed when resuming (only train.rounds can)")
    path = folder.config_path()
    config = load_config(path, overrides)
    missing = folder.config_keys_missing(config)
    if missing:
        raise ConfigError(
            missing[0],
            f"{path} lacks {', '.join(missing)} (written by an earlier fedledger); add the "
            "values that run used to resume it",
        )
    return config


@friendly_errors
def run(
    config: Annotated[
        Path | None, typer.Argument(help="TOML config; omit for the offline default")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="override a key: section.key=value (repeatable)"),
    ] = None,
    out: Annotated[Path | None, typer.Option(help="run folder (default runs/<timestamp>)")] = None,
    resume: Annotated[
        Path | None, typer.Option(help="continue the run in this folder from its checkpoint")
    ] = None,
) -> None:
    """Train a detector across simulated IoT devices and write a run folder with a report."""
    overrides = list(set_ or [])
    if resume is not None:
        if config is not None or out is not None:
            raise ConfigError("", "--resume takes its config and folder from RUN_DIR")
        cfg = _resume_config(RunFolder(resume), overrides)
        path = resume
    else:
        cfg = load_config(config, overrides)
        path = out or _new_run_dir()
    with console.status(f"loading {cfg.data.name} and partitioning it across devices…"):
        runner, done = prepare_run(cfg, path, resume=resume is not None)
    sim, data = runner.sim, runner.sim.data
    tag = " [yellow](synthetic data)[/]" if data.synthetic else ""
    console.print(
        f"[bold]fedledger[/] {data.name}{tag}: {data.n_clients} devices, "
        f"{len(data.y_train)} train / {len(data.y_test)} test samples, "
        f"{data.n_classes} classes; model {type(sim.model).__name__} "
        f"({sim.layout.total} parameters, {sim.trainer.name} trainer)",
        highlight=False,
        soft_wrap=True,
    )
    mode = cfg.security.secure_aggregation
    if mode != "none":
        where = {
            "enclave": "updates sealed to an attested enclave",
            "secagg+": "pairwise-masked updates, only their sum revealed",
            "ckks": "CKKS-encrypted updates, only their sum decrypted",
        }[mode]
        label = (
            "" if mode == "secagg+" else " [yellow](simulated enclave: not hardware-protected)[/]"
        )
        console.print(
            f"secure aggregation [bold]{mode}[/]: {where}{label}", highlight=False, soft_wrap=True
        )
    if data.nonfinite:
        console.print(
            f"[yellow]warning:[/] {data.nonfinite} NaN/Inf feature values were replaced by 0",
            highlight=False,
        )
    if done:
        console.print(f"resuming {path} after round {done}", highlight=False, soft_wrap=True)
    if done == cfg.train.rounds and resume is not None:
        console.print(
            f"{path} already finished all {done} rounds; raise train.rounds to extend it",
            highlight=False,
            soft_wrap=True,
        )
        return
    listener = RichRoundListener(console)
    try:
        summary = runner.run(listener, start_after=done)
    finally:
        listener.close()
    report = write_report(path)
    final = summary["final"]
    console.print(
        f"final accuracy {final.get('accuracy', float('nan')):.4f}, "
        f"macro-F1 {final.get('macro_f1', float('nan')):.4f}; "
        f"model sha256 {summary['model_sha256']}",
        highlight=False,
        soft_wrap=True,
    )
    detection = summary.get("detection")
    if detection is not None:
        bad = detection["tp"] + detection["fn"]
        console.print(
            f"{cfg.strategy.name} found {detection['tp']} of {bad} malicious devices "
            f"(precision {detection['precision']:.3f}, recall {detection['recall']:.3f}, "
            f"F1 {detection['f1']:.3f}); {detection['fp']} honest devices flagged in most rounds",
            highlight=False,
            soft_wrap=True,
        )
    contributions = summary.get("contributions")
    if contributions is not None:
        totals = sorted(contributions["totals"].items(), key=lambda kv: -kv[1])
        top = ", ".join(f"device {d} {v:+.4f}" for d, v in totals[:3])
        console.print(
            f"contributions ({contributions['method']}, {contributions['evaluations']} model "
            f"evaluations): highest {top}; {sum(v < 0 for _, v in totals)} of {len(totals)} "
            f"devices below 0 (summary.json has every device)",
            highlight=False,
            soft_wrap=True,
        )
    if cfg.ledger.backend != "none":
        entries = [r.get("ledger", {}) for r in RunFolder(path).metrics()]
        finalised = sum(1 for led in entries if led.get("finalised"))
        gated = sum(1 for led in entries if led.get("gated"))
        colour = "green" if finalised == cfg.train.rounds and not gated else "yellow"
        fallback = f" ({gated} kept the previous model: validator gate)" if gated else ""
        console.print(
            f"ledger ({cfg.ledger.backend}): [{colour}]{finalised} of {cfg.train.rounds} rounds "
            f"finalised{fallback}[/] by {cfg.ledger.validators} validators; check it with "
            f"`fedledger audit {path}`",
            highlight=False,
            soft_wrap=True,
        )
    console.print(f"run folder: {path}   report: {report}", highlight=False, soft_wrap=True)
