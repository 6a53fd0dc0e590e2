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
OURS_REF = "ours (borrowed)"
PEERS = [
    "rumqttc",
    "mqttrs",
    "mqtt-protocol",
    "mqtt-proto 0.4",
    "mqtt-protocol-core",
    "ntex-mqtt",
]
# Peers whose decoded packet borrows the input: compared with our borrowed view only.
BORROWING = {"mqttrs"}
CASE_ORDER = [
    "publish_qos0_16B",
    "publish_qos0_1KiB",
    "publish_qos0_64KiB",
    "publish_qos0_1MiB",
    "publish_qos1_1KiB",
    "connect",
    "connect_long_username",
    "subscribe_10",
    "puback",
    "stream_10000_publish",
    "stream_10000_publish_props",
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
    print(
        "The owned ratio compares ours with the peers whose packets own their data (all but "
        "mqttrs; every peer for encoding, which has one API); the borrowed ratio compares our "
        "borrowed view with every peer."
    )
    print()
    header = (
        ["version", "op", "case", OURS, OURS_REF]
        + PEERS
        + ["fastest owning peer ÷ ours", "fastest peer ÷ ours (borrowed)"]
    )
    print("| " + " | ".join(header) + " |")
    print("|" + "|".join(["---"] * 3 + ["---:"] * (len(header) - 3)) + "|")

    owned_rows = owned_wins = ref_rows = ref_wins = 0
    for key in sorted(results, key=order):
        op, case, version = key
        times_ns = results[key]
        ours = times_ns.get(OURS)
        ours_ref = times_ns.get(OURS_REF)
        cells = [version, op, case]
        cells.append(fmt_time(ours) if ours else "—")
        cells.append(f"{fmt_time(ours_ref)}" if ours_ref else "—")
        owned_ratios, ref_ratios = [], []
        for peer in PEERS:
            t = times_ns.get(peer)
            if t is None:
                cells.append("—")
                continue
            # Encoding has one API: every peer counts against it.
            if ours and (peer not in BORROWING or op == "encode"):
                owned_ratios.append(t / ours)
            if ours_ref:
                ref_ratios.append(t / ours_ref)
            cells.append(f"{fmt_time(t)} ({t / ours:.2f}×)" if ours else fmt_time(t))
        for ratios in (owned_ratios, ref_ratios):
            best = min(ratios) if ratios else None
            cells.append(f"**{best:.2f}×**" if best is not None else "—")
        if owned_ratios:
            owned_rows += 1
            owned_wins += min(owned_ratios) > 1
        if ref_ratios:
            ref_rows += 1
            ref_wins += min(ref_ratios) > 1
        print("| " + " | ".join(cells) + " |")

    print()
    print(f"Owned: ours is faster than every owning peer in {owned_wins} of {owned_rows} rows.")
    print(f"Borrowed: our view is faster than every peer in {ref_wins} of {ref_rows} rows.")
    for version in VERSION_ORDER:
        small = results.get(("decode", "publish_qos0_16B", version), {}).get(OURS)
        large = results.get(("decode", "publish_qos0_1MiB", version), {}).get(OURS)
        if small and large:
            print(f"{version}: PUBLISH decode 1 MiB ÷ 16 B = {large / small:.2f}×.")
        small = results.get(("encode", "publish_qos0_16B", version), {}).get(OURS)
        large = results.get(("encode", "publish_qos0_1MiB", version), {}).get(OURS)
        if small and large:
            print(f"{version}: PUBLISH encode 1 MiB ÷ 16 B = {large / small:.2f}×.")
        for case in ("stream_10000_publish", "stream_10000_publish_props"):
            row = results.get(("decode", case, version), {})
            peers = {p: t for p, t in row.items() if p in PEERS}
            if not peers:
                continue
            fastest = min(peers, key=peers.get)
            if row.get(OURS_REF):
                print(
                    f"{version} {case}: borrowed {peers[fastest] / row[OURS_REF]:.2f}× "
                    f"the fastest peer ({fastest}; target 2×)"
                )
            if row.get(OURS) and "rumqttc" in peers:
                print(
                    f"{version} {case}: owned {peers['rumqttc'] / row[OURS]:.2f}× rumqttc "
                    "(target 1.5×)"
                )

if __name__ == "__main__":
    main()
