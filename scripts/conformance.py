#!/usr/bin/env python3
"""Keeps CONFORMANCE.md honest.

  conformance.py check      fail if the table names a test that does not exist, if a test cites
                            a statement id the table lacks, or if a statement of the specs is
                            missing from the table
  conformance.py generate   print a fresh table from the statement lists and the citations found
                            in sources and tests (a starting point; statuses are then reviewed)

Statement lists: ../shared/spec/mqtt-3.1.1-statements.tsv and mqtt-5.0-statements.tsv (tab
separated: id, section, binds, summary). A test "cites" an id when `[MQTT-x.y.z-n]` appears in
its body or in the comment lines right above it.
"""

import csv
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIRS = [ROOT.parent / "shared" / "spec", ROOT / "spec"]
TABLE = ROOT / "CONFORMANCE.md"
CRATES = ["mqtt-proto", "mqtt-session", "mqtt-tokio", "mqtt-async-std", "mqtt-cli", "mqtt-testkit"]
ID_RE = re.compile(r"\[(MQTT-\d+(?:\.\d+)*-\d+)\]")
FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")
VERSIONS = [("3.1.1", "mqtt-3.1.1-statements.tsv"), ("5.0", "mqtt-5.0-statements.tsv")]


def spec_file(name):
    for d in SPEC_DIRS:
        if (d / name).exists():
            return d / name
    sys.exit(f"statement list {name} not found in {', '.join(map(str, SPEC_DIRS))}")


def statements(name):
    with open(spec_file(name), newline="") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if row.get("id")]


def rust_files(kind):
    """Yields Rust files: kind 'test' = tests/, benches excluded; 'src' = src/."""
    for crate in CRATES:
        base = ROOT / crate
        if not base.exists():
            continue
        for path in base.rglob("*.rs"):
            rel = path.relative_to(base).parts
            if "target" in rel:
                continue
            if kind == "test" and rel[0] in ("tests",):
                yield path
            elif kind == "src" and rel[0] == "src":
                yield path
            elif kind == "test" and rel[0] == "src":
                yield path  # unit tests in #[cfg(test)] modules


def test_citations():
    """Maps test function name -> (file, set of ids) for every test function."""
    tests = {}
    for path in rust_files("test"):
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
        in_test_code = "tests" in path.relative_to(ROOT).parts[:2]
        pending_ids = set()
        current = None
        is_test = False
        for i, line in enumerate(lines):
            if "#[cfg(test)]" in line:
                in_test_code = True
            m = FN_RE.match(line)
            if m:
                attrs = "\n".join(lines[max(0, i - 6):i])
                is_test = (("#[test]" in attrs or "::test" in attrs) and in_test_code) or (
                    "__suite_test!" in attrs
                )
                current = m.group(1) if is_test else None
                if current:
                    entry = tests.setdefault(current, (path, set()))
                    entry[1].update(pending_ids)
                pending_ids = set()
                continue
            ids = set(ID_RE.findall(line))
            if not ids:
                continue
            if current:
                tests[current][1].update(ids)
            elif line.strip().startswith("//"):
                pending_ids |= ids
    return tests


def source_citations():
    """Maps id -> set of source files (non-test code) citing it."""
    found = {}
    for path in rust_files("src"):
        text = path.read_text(encoding="utf-8", errors="replace")
        text = text.split("#[cfg(test)]")[0]
        for sid in ID_RE.findall(text):
            found.setdefault(sid, set()).add(str(path.relative_to(ROOT)))
    return found


ROW_RE = re.compile(r"^\|\s*(MQTT-[0-9.\-]+)\s*\|(.*)\|\s*$")


def read_table():
    """Returns {(version, id): {'tests': [...], 'status': str}} from CONFORMANCE.md."""
    rows = {}
    version = None
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            version = "5.0" if "5.0" in line else "3.1.1" if "3.1.1" in line else None
            continue
        m = ROW_RE.match(line)
        if not m or version is None:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        if len(cells) < 5:
            continue
        _binds, _summary, _where, tests, status = cells[:5]
        names = re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", tests)
        rows[(version, m.group(1))] = {"tests": names, "status": status}
    return rows


def check():
    problems = []
    tests = test_citations()
    rows = read_table()
    for version, name in VERSIONS:
        for st in statements(name):
            if (version, st["id"]) not in rows:
                problems.append(f"{version} {st['id']}: missing from CONFORMANCE.md")
    cited_in_table = {sid for (_, sid) in rows}
    for (version, sid), row in rows.items():
        for t in row["tests"]:
            if t not in tests:
                problems.append(f"{version} {sid}: test `{t}` does not exist")
        if row["status"].startswith("tested") and not row["tests"]:
            problems.append(f"{version} {sid}: status tested but no test named")
    for t, (path, ids) in sorted(tests.items()):
        for sid in sorted(ids):
            if sid not in cited_in_table:
                problems.append(f"{path.relative_to(ROOT)}: `{t}` cites {sid}, which the table lacks")
    counts = {}
    for (version, _), row in rows.items():
        key = (version, row["status"].split(":")[0])
        counts[key] = counts.get(key, 0) + 1
    for key in sorted(counts):
        print(f"{key[0]:>5} {key[1]:<20} {counts[key]}")
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} conformance table problems")
        return 1
    print("CONFORMANCE.md is consistent with the tests and the statement lists")
    return 0


def notes():
    """Reviewed statuses for statements no test cites: (version, id) -> status text."""
    path = Path(__file__).with_name("conformance-notes.tsv")
    with open(path, newline="") as f:
        return {(r["version"], r["id"]): r["status"] for r in csv.DictReader(f, delimiter="\t")}


HEADER = """# Conformance

Every normative statement of MQTT 3.1.1 and MQTT 5.0, and how this client meets it. The
statement ids, sections and whom each binds come from the specs' lists; the paraphrase is
ours. *binds* says who the statement is about: `client`, `server`, `both`, or `format` (the
packet format, enforced by the codec in both directions).

Status:
- **tested**: the named tests check it (each cites the id in a comment);
- **enforced-untested** / **enforced by construction**: the code keeps it, no test checks it;
- **not applicable**: it cannot concern a client, with why;
- **server-only**: it binds the server alone (listed so the count is complete);
- **not yet**: it binds a client and is not met or not checked yet.

`python3 scripts/conformance.py check` (run by `.ci/run`) fails when a test named here does
not exist, when a test cites an id missing here, or when a statement is missing.
`python3 scripts/conformance.py generate` rebuilds this file from the tests' citations and
`scripts/conformance-notes.tsv`.
"""


def generate():
    reviewed = notes()
    tests = test_citations()
    sources = source_citations()
    by_id = {}
    for t, (path, ids) in tests.items():
        for sid in ids:
            by_id.setdefault(sid, []).append(t)
    out = [HEADER]
    totals = []
    for version, name in VERSIONS:
        out.append(f"## MQTT {version}\n")
        counts, total, relevant = {}, 0, 0
        out.append("| id | binds | statement (paraphrased) | enforced in | tests | status |")
        out.append("|---|---|---|---|---|---|")
        for st in statements(name):
            sid = st["id"]
            names = sorted(set(by_id.get(sid, [])))
            where = ", ".join(f"`{p}`" for p in sorted(sources.get(sid, []))) or ""
            if names:
                status = "tested"
            elif (version, sid) in reviewed:
                status = reviewed[(version, sid)]
            elif st["binds"] == "server":
                status = "server-only"
            elif where:
                status = "enforced-untested"
            else:
                status = "not yet"
            tests_cell = ", ".join(f"`{n}`" for n in names)
            summary = st["summary"].replace("|", "\\|")
            out.append(f"| {sid} | {st['binds']} | {summary} | {where} | {tests_cell} | {status} |")
            counts[status.split(":")[0]] = counts.get(status.split(":")[0], 0) + 1
            total += 1
            relevant += st["binds"] != "server"
        out.append("")
        totals.append((version, total, relevant, counts))
    lines = ["## Summary\n", "| spec | statements | binding a client or the format | tested | other statuses |", "|---|---|---|---|---|"]
    for version, total, relevant, counts in totals:
        others = ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()) if k != "tested")
        lines.append(f"| MQTT {version} | {total} | {relevant} | {counts.get('tested', 0)} | {others} |")
    out.insert(1, "\n".join(lines) + "\n")
    print("\n".join(out))
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    sys.exit({"check": check, "generate": generate}.get(cmd, lambda: sys.exit(__doc__))())
