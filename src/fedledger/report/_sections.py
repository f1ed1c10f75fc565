"""The sections of ``report.md``, each a function from run data to Markdown lines."""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fedledger.report._markdown import MISSING, code, config_value, flatten, number, table
from fedledger.report._screening import (
    device_name,
    is_malicious,
    number_or_none,
    screen_rounds,
)

__all__ = [
    "config_section",
    "devices_section",
    "final_section",
    "header_section",
    "image",
    "ledger_section",
    "model_section",
    "per_class_section",
    "rounds_section",
    "screen_section",
    "secure_section",
]

#: Final-round metrics shown first: record key, label.
_HEADLINE = (
    ("accuracy", "accuracy"),
    ("macro_f1", "macro-F1"),
    ("detection_rate", "detection rate"),
    ("false_alarm_rate", "false alarm rate"),
    ("loss", "loss"),
)
_SYNTHETIC_NOTE = (
    "> **Synthetic data.** This run trained and evaluated on generated IoT traffic, not on a "
    "captured dataset. Its numbers show that the pipeline works; they say nothing about how "
    "well the model detects attacks on a real network."
)


def header_section(
    title: str,
    records: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    config: dict[str, Any],
    classes: Sequence[str],
) -> list[str]:
    """Title, the synthetic-data note when it applies, and an overview table."""
    data = config.get("data", {})
    dataset = summary.get("dataset", data.get("name") if isinstance(data, dict) else None)
    synthetic = summary.get("synthetic", dataset == "synthetic")
    planned = summary.get("rounds", _nested(config, "train", "rounds"))
    done = len(records)
    if summary:
        status = f"finished, {done} rounds"
    else:
        of = f" of {planned}" if planned is not None else ""
        status = f"unfinished: {done}{of} rounds recorded, no summary.json yet"
    shown = ", ".join(classes[:12]) + (f", … (+{len(classes) - 12})" if len(classes) > 12 else "")
    name = str(dataset or MISSING)
    if synthetic and "synthetic" not in name:
        name += " (synthetic data)"
    lines = [f"# Run report: {title}", ""]
    if synthetic:
        lines += [_SYNTHETIC_NOTE, ""]
    lines += [f"- **dataset:** {name}", f"- **status:** {status}"]
    lines.append(f"- **classes:** {len(classes)}: {shown}" if classes else "- **classes:** —")
    if "seconds_total" in summary:
        lines.append(f"- **total time:** {number(summary['seconds_total'], 1)} s")
    return [*lines, ""]


def final_section(final: dict[str, Any], round_label: str, finished: bool) -> list[str]:
    """Headline metrics of the last recorded round ("latest" while the run is unfinished)."""
    lines = [f"## {'Final' if finished else 'Latest'} metrics ({round_label})", ""]
    if not final:
        return [*lines, "No round has finished yet.", ""]
    rows = [[label, number(final.get(key))] for key, label in _HEADLINE]
    return [*lines, *table(["metric", "value"], rows), ""]


def rounds_section(records: Sequence[dict[str, Any]], plot: str | None) -> list[str]:
    """The per-round plot and table (with the backdoor's success rate when one attacks)."""
    lines = ["## Metrics per round", ""]
    if plot:
        lines += [image("Accuracy, macro-F1 and loss per round", plot), ""]
    if not records:
        return [*lines, "No round has finished yet.", ""]
    backdoor = any("backdoor_success" in r for r in records)
    rows = [
        [
            number(r.get("round", i + 1)),
            number(r.get("accuracy")),
            number(r.get("macro_f1")),
            number(r.get("loss")),
            *([number(r.get("backdoor_success"))] if backdoor else []),
            number(r.get("seconds"), 2),
        ]
        for i, r in enumerate(records)
    ]
    header = ["round", "accuracy", "macro-F1", "loss"]
    header += [*(["backdoor success"] if backdoor else []), "seconds"]
    return [*lines, *table(header, rows), ""]


def ledger_section(records: Sequence[dict[str, Any]]) -> list[str]:
    """Per round: was the model finalised by a validator quorum (or, by the validator gate,
    the previous model again), envelopes accepted and rejected (with reasons), votes,
    transactions and gas. Empty for runs without a ledger."""
    rounds = [(r, r["ledger"]) for r in records if isinstance(r.get("ledger"), dict)]
    if not rounds:
        return []
    failed = [number(r.get("round")) for r, led in rounds if not led.get("finalised")]
    gated = [number(r.get("round")) for r, led in rounds if led.get("gated")]
    lines = ["## Ledger", ""]
    if failed:
        lines += [
            f"> **Not finalised:** round(s) {', '.join(failed)} reached no validator quorum; "
            "the previous global model stood and the metrics are those of that model.",
            "",
        ]
    if gated:
        lines += [
            f"> **Fallback:** in round(s) {', '.join(gated)} the validators' gate refused the "
            "candidate model (its validation accuracy fell by more than `ledger.gate_margin`); "
            "the previous global model was finalised again and the metrics are those of that "
            "model. `ledger/rounds.jsonl` records each validator's scores and decision.",
            "",
        ]
    lines += [
        "Every round was opened on chain, each gateway committed the Merkle root of the "
        "envelopes it accepted, and validators voted on the re-derived model. "
        "`fedledger audit` re-checks all of it; `fedledger ledger show` lists the chain's "
        "records.",
        "",
    ]
    rows = []
    for r, led in rounds:
        reasons = led.get("rejections") or {}
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "0"
        rows.append(
            [
                number(r.get("round")),
                ("fallback" if led.get("gated") else "yes")
                if led.get("finalised")
                else "**no quorum**",
                f"{led.get('votes', MISSING)}/{led.get('validators', MISSING)}",
                number(led.get("accepted")),
                rejected,
                number(led.get("transactions")),
                number(led.get("gas")),
            ]
        )
    header = ["round", "finalised", "votes", "accepted", "rejected", "transactions", "gas"]
    return [*lines, *table(header, rows, "rlrrlrr"), ""]


_PROTECTION = {
    "enclave": "each update was sealed to an attested enclave, which ran the strategy on the "
    "individual updates and released only the aggregate and a signed transcript. The enclave "
    "is **simulated: not hardware-protected** (a separate process with software keys).",
    "secagg+": "updates were masked pairwise (SecAgg+, Bell et al. 2020); the aggregator "
    "learned only their sum.",
    "ckks": "updates were CKKS-encrypted; ciphertexts were summed and only the sum was "
    "decrypted, by the key holder (the simulated enclave: **not hardware-protected**).",
}


def secure_section(records: Sequence[dict[str, Any]]) -> list[str]:
    """Per round: how many protected updates were aggregated, refused (with reasons) and, for
    SecAgg+, dropped out. Empty for runs without secure aggregation."""
    rounds = [(r, r["secure"]) for r in records if isinstance(r.get("secure"), dict)]
    if not rounds:
        return []
    mode = str(rounds[-1][1].get("mode", MISSING))
    lines = ["## Secure aggregation", "", f"Mode `{mode}`: {_PROTECTION.get(mode, '')}", ""]
    rows = []
    for r, sec in rounds:
        reasons = sec.get("refused") or {}
        refused = ", ".join(f"{k} {v}" for k, v in sorted(reasons.items())) or "0"
        rows.append(
            [
                number(r.get("round")),
                number(sec.get("aggregated")),
                refused,
                number(sec.get("dropped", 0)),
                number(sec.get("clipped", 0)),
            ]
        )
    header = ["round", "aggregated", "refused", "dropped out", "clipped values"]
    return [*lines, *table(header, rows, "rrlrr"), ""]


def screen_section(
    records: Sequence[dict[str, Any]],
    summary: dict[str, Any],
    devices: Sequence[dict[str, Any]],
    strategy: str | None,
    plot: str | None,
) -> list[str]:
    """What a screening or selecting strategy flagged: totals, the run-level detection of the
    malicious devices, the per-round plot and, under a backdoor attack, its final success rate.
    Empty for runs without screening (no ``screen`` entry in ``metrics.jsonl``)."""
    rounds = screen_rounds(records, devices)
    if not rounds:
        return []
    flags = sum(len(r.flagged) for r in rounds)
    sizes = [r.devices for r in rounds]
    if None in sizes:
        flagged = _count(flags, "device-round")
    else:
        flagged = f"{flags} of {_count(sum(s or 0 for s in sizes), 'device-round')}"
    ever = sorted({d for r in rounds for d in r.flagged})
    split = ""
    if devices and ever:
        bad = sum(0 <= d < len(devices) and is_malicious(devices[d]) for d in ever)
        split = f" ({bad} malicious, {len(ever) - bad} honest)"
    who = f"The {code(strategy)} strategy" if strategy else "The strategy"
    lines = [
        "## Screening and detection",
        "",
        f"{who} flagged {flagged} in {_count(len(rounds), 'round')}; "
        f"{_count(len(ever), 'distinct device')} {'was' if len(ever) == 1 else 'were'} flagged "
        f"at least once{split}.",
        "",
    ]
    detection = summary.get("detection")
    if isinstance(detection, dict):
        lines += [
            "Over the run, a device counts as detected when it was flagged in more than half "
            "of the attack rounds it took part in:",
            "",
            *table(["metric", "value"], _detection_rows(detection, devices)),
            "",
        ]
    elif any(r.recall is not None for r in rounds) and not summary:
        lines += ["The run-level detection is written when the run finishes.", ""]
    if plot:
        lines += [image("Flagged devices per round, malicious and honest", plot), ""]
    backdoor = [r for r in records if number_or_none(r.get("backdoor_success")) is not None]
    if backdoor:
        record = backdoor[-1]
        which = "the last round it was measured in"
        if record is records[-1]:
            which = "the final round" if summary else "the latest round"
        shown = "; the dashed line in the plot shows it per round" if plot else ""
        lines += [
            "Backdoor success (of the test samples of other classes that the model classifies "
            "correctly, the share the trigger turns into the target class): "
            f"**{number(record['backdoor_success'])}** in round {number(record.get('round'))}, "
            f"{which}{shown}.",
            "",
        ]
    return lines


def _detection_rows(
    detection: dict[str, Any], devices: Sequence[dict[str, Any]]
) -> list[list[str]]:
    """The rows of the run-level detection table; the honest devices detected and the malicious
    ones not detected are named (up to five) when ``devices.json`` is there."""
    tp, fp, fn = (detection.get(k) for k in ("tp", "fp", "fn"))
    found = MISSING
    if isinstance(tp, int) and isinstance(fn, int):
        found = f"{tp} / {tp + fn}"
    detected = [d for d in detection.get("detected") or [] if isinstance(d, int)]
    wrong = [d for d in detected if 0 <= d < len(devices) and not is_malicious(devices[d])]
    missed = [d for d, dev in enumerate(devices) if is_malicious(dev) and d not in detected]
    if fn and missed:
        found += f" (not detected: {_names(devices, missed)})"
    honest = number(fp)
    if fp and wrong:
        honest += f" ({_names(devices, wrong)})"
    return [
        ["precision", number(detection.get("precision"))],
        ["recall", number(detection.get("recall"))],
        ["F1", number(detection.get("f1"))],
        ["malicious devices detected", found],
        ["honest devices detected (false positives)", honest],
    ]


def _names(devices: Sequence[dict[str, Any]], ids: Sequence[int], limit: int = 5) -> str:
    """Device names for a table cell: the first ``limit``, then how many more."""
    shown = ", ".join(device_name(devices, d) for d in ids[:limit])
    return shown + (f", +{len(ids) - limit} more" if len(ids) > limit else "")


def _count(n: int, noun: str) -> str:
    """``1 round``, ``3 rounds``."""
    return f"{n} {noun}{'' if n == 1 else 's'}"


def per_class_section(final: dict[str, Any], round_label: str, plot: str | None) -> list[str]:
    """Precision, recall and F1 per class, and the confusion-matrix plot."""
    lines = [f"## Per class ({round_label})", ""]
    per_class = final.get("per_class")
    if isinstance(per_class, dict) and per_class:
        rows = [
            [
                str(name),
                number(s.get("precision")),
                number(s.get("recall")),
                number(s.get("f1")),
                number(s.get("support")),
            ]
            for name, s in per_class.items()
            if isinstance(s, dict)
        ]
        lines += [*table(["class", "precision", "recall", "F1", "support"], rows), ""]
    else:
        lines += ["No per-class scores recorded.", ""]
    if plot:
        lines += [image("Confusion matrix", plot), ""]
    return lines


def devices_section(devices: Sequence[dict[str, Any]], plot: str | None) -> list[str]:
    """Devices per cluster and role, and the spread of their sample counts."""
    lines = ["## Devices", ""]
    if not devices:
        return [*lines, "No devices.json yet.", ""]
    samples = [d.get("n_samples") for d in devices]
    counts = [s for s in samples if isinstance(s, int) and not isinstance(s, bool)]
    if counts:
        lines += [
            f"{len(devices)} devices hold {sum(counts)} training samples: "
            f"min {min(counts)}, median {_median(counts)}, "
            f"max {max(counts)} per device.",
            "",
        ]
    clusters = [str(d.get("cluster", "none")) for d in devices]
    roles = [str(d.get("role", "honest")) for d in devices]
    role_names = sorted(set(roles))
    pairs = Counter(zip(clusters, roles, strict=True))
    rows = [
        [cluster, *(str(pairs[cluster, role]) for role in role_names), str(clusters.count(cluster))]
        for cluster in sorted(set(clusters))
    ]
    rows.append(["**all**", *(str(roles.count(r)) for r in role_names), str(len(devices))])
    lines += [*table(["cluster", *role_names, "devices"], rows), ""]
    if plot:
        lines += [image("Training samples per device", plot), ""]
    return lines


def model_section(
    model_file: str, size: int | None, actual: str | None, recorded: dict[str, str | None]
) -> list[str]:
    """The model file, its digest, and whether it matches the recorded digests.

    Parameters
    ----------
    model_file
        File name of the model in the run folder.
    size
        Its size in bytes, or None if it does not exist.
    actual
        sha256 of the file as it is on disk, or None.
    recorded
        Digest recorded by each source (``"model.sha256"``, ``"summary.json"``), None if absent.
    """
    lines = ["## Model", ""]
    if actual is None or size is None:
        return [*lines, f"No {code(model_file)} yet (the run has not finished).", ""]
    lines += [f"- file: {code(model_file)} ({_bytes(size)})", f"- sha256: {code(actual)}"]
    for source, digest in recorded.items():
        if digest is None:
            lines.append(f"- {source}: no digest recorded")
        elif digest.lower() == actual:
            lines.append(f"- {source}: digest matches")
        else:
            lines.append(f"- {source}: **digest does not match** (records {code(digest)})")
    return [*lines, ""]


def config_section(config: dict[str, Any]) -> list[str]:
    """The resolved configuration as a key/value table."""
    lines = ["## Configuration", ""]
    if not config:
        return [*lines, "No config.toml in the run folder.", ""]
    rows = [[code(key), code(config_value(value))] for key, value in flatten(config)]
    return [*lines, *table(["key", "value"], rows, align="ll"), ""]


def image(alt: str, relative_path: str) -> str:
    """A Markdown image with a relative link (forward slashes on every OS)."""
    return f"![{alt}]({Path(relative_path).as_posix()})"


def _nested(document: dict[str, Any], section: str, key: str) -> Any:
    """``document[section][key]``, or None when either level is absent."""
    table_ = document.get(section)
    return table_.get(key) if isinstance(table_, dict) else None


def _median(values: list[int]) -> str:
    """The median, without a ``.0`` when it is a whole number."""
    middle = float(statistics.median(values))
    return str(int(middle)) if middle.is_integer() else f"{middle:.1f}"


def _bytes(size: int) -> str:
    """A file size for people: ``512 bytes``, ``3.4 KiB``, ``1.2 MiB``."""
    if size < 1024:
        return f"{size} bytes"
    if size < 1024**2:
        return f"{size / 1024:.1f} KiB"
    return f"{size / 1024**2:.1f} MiB"
