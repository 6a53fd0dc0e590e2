#!/usr/bin/env python3
"""Builds the markdown comparison table of benches/README.md from criterion's results.

Reads every <criterion dir>/**/new/benchmark.json with the estimates.json beside it. Benchmark
ids are `{encode,decode}/{case}/{version}/{codec}` (see benches/codec/main.rs). The time shown
is criterion's point estimate: the slope of its linear fit, or the mean where there is none.

Usage: python3 benches/table.py [CRITERION_DIR]
The directory defaults to $CARGO_TARGET_DIR/criterion, else target/criterion at the workspace
root. Clear it before a full run so that every number comes from that run; the header gives
the time span the results were written in, to check.
"""

import datetime
import json
import os
import pathlib
import platform
import sys

OURS = "ours"
PEERS = ["rumqttc", "mqttrs", "mqtt-protocol", "mqtt-proto 0.4", "mqtt-protocol-core"]
CASE_ORDER = [
    "publish_qos0_16B",
    "publish_qos0_1KiB",
    "publish_qos0_64KiB",
    "publish_qos0_1MiB",
    "publish_qos1_1KiB",
    "connect",
    "subscribe_10",
    "puback",
    "stream_10000_publish",
]
VERSION_ORDER = ["v3.1.1", "v5.0"]
OP_ORDER = ["encode", "decode"]


def default_dir():
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        return pathlib.Path(target) / "criterion"
    return pathlib.Path(__file__).resolve().parent.parent / "target" / "criterion"


def load(root):
    """{(op, case, version): {codec: ns}} and the modification times seen."""
    results, times = {}, []
    for meta_path in root.glob("**/new/benchmark.json"):
        meta = json.loads(meta_path.read_text())
        estimates = json.loads((meta_path.parent / "estimates.json").read_text())
        point = (estimates.get("slope") or estimates["mean"])["point_estimate"]
        parts = meta["group_id"].split("/")
        if len(parts) != 3:
            continue
        op, case, version = parts
        results.setdefault((op, case, version), {})[meta["function_id"]] = point
        times.append(meta_path.parent.joinpath("estimates.json").stat().st_mtime)
    return results, times


def fmt_time(ns):
    for unit, scale in (("ms", 1e6), ("µs", 1e3)):
        if ns >= scale:
            return f"{ns / scale:.3g} {unit}"
    return f"{ns:.3g} ns"


def order(key):
    op, case, version = key

    def index(items, item):
        return items.index(item) if item in items else len(items)

    return (index(VERSION_ORDER, version), index(OP_ORDER, op), index(CASE_ORDER, case), case)


def machine():
    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def main():
    root = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else default_dir()
    results, times = load(root)
    if not results:
        sys.exit(f"no criterion results under {root}")

    def stamp(t):
        return datetime.datetime.fromtimestamp(t).strftime("%Y-%m-%d %H:%M")

    print(f"Results written {stamp(min(times))} to {stamp(max(times))} on {machine()}.")
    print("Each peer cell: its time and (peer ÷ ours); above 1× means ours is faster.")
    print()
    header = ["version", "op", "case", OURS] + PEERS + ["fastest peer ÷ ours"]
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")

    rows = wins = 0
    for key in sorted(results, key=order):
        op, case, version = key
        times_ns = results[key]
        ours = times_ns.get(OURS)
        cells = [version, op, case, fmt_time(ours) if ours else "—"]
        ratios = []
        for peer in PEERS:
            t = times_ns.get(peer)
            if t is None:
                cells.append("—")
            elif ours:
                ratios.append(t / ours)
                cells.append(f"{fmt_time(t)} ({t / ours:.2f}×)")
            else:
                cells.append(fmt_time(t))
        best = min(ratios) if ratios else None
        cells.append(f"**{best:.2f}×**" if best is not None else "—")
        if best is not None:
            rows += 1
            wins += best > 1
        print("| " + " | ".join(cells) + " |")

    print()
    print(f"Ours is faster than every peer in {wins} of {rows} rows.")
    for version in VERSION_ORDER:
        small = results.get(("decode", "publish_qos0_16B", version), {}).get(OURS)
        large = results.get(("decode", "publish_qos0_1MiB", version), {}).get(OURS)
        if small and large:
            print(f"{version}: PUBLISH decode 1 MiB ÷ 16 B = {large / small:.2f}×.")


if __name__ == "__main__":
    main()
