#!/usr/bin/env python3
"""Keeps CONFORMANCE.md honest.

  conformance.py check      fail if a citation names no spec version, is malformed or names a
                            statement its spec lacks; if a test cites a server statement
                            unmarked; if a row's tests or status differ from what the tests
                            cite; if a statement is missing from the table; or if a count of the
                            summary differs from the rows it counts. Prints the counts.
  conformance.py generate   print a fresh table from the statement lists, the citations found in
                            sources and tests, and the reviewed statuses of
                            scripts/conformance-notes.tsv
  conformance.py migrate [--dry-run] [PATH...]
                            tag every untagged citation under PATH (default: every crate) with
                            its spec version, in place; list the citations it cannot decide and
                            exit 1 if there are any. --dry-run prints each decision and its
                            reason instead, for review.

Statement lists: ../shared/spec/mqtt-3.1.1-statements.tsv and mqtt-5.0-statements.tsv (tab
separated: id, section, binds, summary), or the copies in spec/.

Citations. MQTT 3.1.1 and 5.0 reuse statement ids for different statements (MQTT-3.1.2-16 is
about the Will in one and the user name flag in the other), so a citation names its spec:

    [MQTT-3.1.2-18 v3.1.1]   [MQTT-3.1.2-16 v5.0]

The id stays as the spec prints it, so a search for it finds the citations of either version.
Every citation carries the tag, also where only one list has the id: a reader need not look the
id up, and a later list cannot make it ambiguous. A test that checks the same rule in both
versions cites both statements, in one citation where both specs give it the same id:
`[MQTT-3.3.1-2 v3.1.1 v5.0]`. A test "cites" a statement when the citation appears in its
body or in the comment lines right above it. Production code (src/ outside `#[cfg(test)]`, the
test kit excluded) tags the citations in its comments the same way and fills the "enforced in"
column; the messages of its errors (string literals) may stay untagged, and then count there
only when one list alone has the id.

A test cites a statement that binds the server only when it checks the client's side of it: how
the client reacts to what a server does or fails to do, the codec's check a server relies on, or
the client applying the rule to what it holds. It then marks the citation, `[MQTT-3.2.2-8 v5.0
server]`, and is listed on that statement's row, which stays server-only: a client cannot meet a
server's duty. Where a statement binding the client covers the case, the test cites that one.

migrate decides the version of an untagged citation from, in order: (a) an annotation right
after it or after the run of citations it belongs to, "(3.1.1)", "(5.0)", "(both)" or "(3.1.1
and 5.0)", which it then drops; (b) the id existing in one list only; (c) the versions the
enclosing test or function runs, from its code (`V5`, `V3_1_1`, every version with `VERSIONS`
or `for version in`) or else its name (`_v5`, `before_5_0`); when it runs both, (d) the
statement summaries: the same rule in both specs is cited for both, otherwise the version whose
summary the comments and name match clearly better. It refuses a version the test does not run
and, in a test, a statement that binds the server: those it lists for a reader, with both
summaries, together with the ones it cannot decide. Production string literals are left alone.
Read the --dry-run output before trusting a run: the summaries decide only what a person would.
"""

import csv
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SPEC_DIRS = [ROOT.parent / "shared" / "spec", ROOT / "spec"]
TABLE = ROOT / "CONFORMANCE.md"
NOTES = Path(__file__).with_name("conformance-notes.tsv")
CRATES = [
    "mqtt-proto",
    "mqtt-session",
    "mqtt-io",
    "mqtt-tokio",
    "mqtt-async-std",
    "mqtt-cli",
    "mqtt-testkit",
]
VERSIONS = [("3.1.1", "mqtt-3.1.1-statements.tsv"), ("5.0", "mqtt-5.0-statements.tsv")]
VERSION_NAMES = [v for v, _ in VERSIONS]
# A citation: the id as the spec prints it, then an optional tail (" v5.0", " v5.0 server").
CITE_RE = re.compile(r"\[(MQTT-\d+(?:\.\d+)*-\d+)([^\[\]\n]*)\]")
TAIL_RE = re.compile(r"^((?: v(?:3\.1\.1|5\.0))*)( server)?$")
FN_RE = re.compile(r"^\s*(?:pub(?:\([^)]*\))?\s+)?(?:async\s+)?fn\s+([A-Za-z_][A-Za-z0-9_]*)")


def spec_file(name):
    for d in SPEC_DIRS:
        if (d / name).exists():
            return d / name
    sys.exit(f"statement list {name} not found in {', '.join(map(str, SPEC_DIRS))}")


def statements(name):
    with open(spec_file(name), newline="") as f:
        return [row for row in csv.DictReader(f, delimiter="\t") if row.get("id")]


def spec():
    """{version: {id: row}} for both statement lists, in list order."""
    return {version: {r["id"]: r for r in statements(name)} for version, name in VERSIONS}


# The test kit's embedded broker is a server: its tests check a demo broker, not the client,
# so its citations of server statements do not belong in the client's table.
EXCLUDED = [ROOT / "mqtt-testkit" / "src" / "embedded", ROOT / "mqtt-testkit" / "src" / "embedded.rs",
            ROOT / "mqtt-testkit" / "tests" / "embedded.rs"]


def rust_files():
    """Yields the Rust files under each crate's src/ and tests/ (but the embedded broker's)."""
    for crate in CRATES:
        base = ROOT / crate
        for sub in ("src", "tests"):
            if (base / sub).exists():
                for path in sorted((base / sub).rglob("*.rs")):
                    if not any(path == e or e in path.parents for e in EXCLUDED):
                        yield path


def is_test_file(path):
    """Files of tests/, and the test kit, which is test code throughout (the shared suite)."""
    parts = path.relative_to(ROOT).parts
    return parts[0] == "mqtt-testkit" or "tests" in parts[:2]


class Cite:
    """One citation in a Rust file.

    where: "test" (attributed to a test function), "support" (other test code) or "source"
    (production code). literal: inside a string literal. versions: empty when untagged.
    """

    def __init__(self, path, line, m, where, literal):
        self.path, self.line, self.start, self.end = path, line, m.start(), m.end()
        self.sid = m.group(1)
        tail = TAIL_RE.match(m.group(2))
        self.bad = None if tail else m.group(0)
        self.versions = [v[1:] for v in tail.group(1).split()] if tail else []
        self.server = bool(tail and tail.group(2))
        self.where, self.literal = where, literal
        self.test = None
        self.region = None  # (first, last) line of the enclosing test or function

    def loc(self):
        return f"{self.path.relative_to(ROOT)}:{self.line + 1}"


def in_literal(line, col):
    """Whether column `col` of `line` is inside a string literal (outside a comment)."""
    before = line[:col]
    if "//" in before.split('"')[0] or before.lstrip().startswith("//"):
        return False
    return before.count('"') % 2 == 1


LITERAL_RE = re.compile(r"'(?:\\.|[^'\\])'|\"(?:\\.|[^\"\\])*\"")


def test_lines(path, lines):
    """The lines that are test code: all of a test file, else each `#[cfg(test)]` item."""
    if is_test_file(path):
        return set(range(len(lines)))
    out, i = set(), 0
    while i < len(lines):
        if "#[cfg(test)]" not in lines[i]:
            i += 1
            continue
        depth, opened, j = 0, False, i
        while j < len(lines):
            code = LITERAL_RE.sub("", lines[j].split("//")[0])
            if j == i:
                code = code.split("#[cfg(test)]", 1)[1]
            for ch in code:
                if ch == "{":
                    depth, opened = depth + 1, True
                elif ch == "}":
                    depth -= 1
            ended = depth < 0 or ";" in code or "," in code  # an item without a body
            if (opened and depth <= 0) or (not opened and ended):
                break
            j += 1
        out.update(range(i, j + 1))
        i = j + 1
    return out


def is_test_fn(lines, i, in_test_code):
    attrs = "\n".join(lines[max(0, i - 6) : i])
    return (("#[test]" in attrs or "::test" in attrs) and in_test_code) or "__suite_test!" in attrs


def scan_file(path):
    """Returns (lines, citations) of one file, each citation attributed to its test if any."""
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    test_code = test_lines(path, lines)
    cites, pending, fns = [], [], []
    current = None
    for i, line in enumerate(lines):
        in_test_code = i in test_code
        stripped = line.strip()
        # Comment lines count for the test right below them, past attributes and blank lines.
        above_a_test = not stripped or stripped.startswith(("//", "#[")) or "__suite_test!" in line
        m = FN_RE.match(line)
        if m:
            current = m.group(1) if is_test_fn(lines, i, in_test_code) else None
            fns.append([i, len(lines), current, pending])
            if len(fns) > 1:
                fns[-2][1] = i
            if current:
                for c in pending:
                    c.test, c.where = current, "test"
            pending = []
            continue
        if not above_a_test:
            pending = []
        for cm in CITE_RE.finditer(line):
            literal = in_literal(line, cm.start())
            where = "test" if current else "support" if in_test_code else "source"
            c = Cite(path, i, cm, where, literal)
            c.test = current
            cites.append(c)
            if not current and line.strip().startswith("//"):
                pending.append(c)
    # Regions: a test or function runs from its comment block to the next function.
    for start, stop, _name, above in fns:
        first = min([c.line for c in above] + [start])
        for c in cites:
            if start <= c.line < stop or c in above:
                c.region = (first, stop)
    for c in cites:
        if c.region is None:
            c.region = (0, len(lines))
    return lines, cites


def scan():
    """All citations of all Rust files: {path: (lines, [Cite])}."""
    return {path: scan_file(path) for path in rust_files()}


def all_cites(files):
    return [c for _, cites in files.values() for c in cites]


def test_citations(files, lists):
    """Maps test name -> (file, {(version, id, server)}) for every test that cites something.

    An untagged citation (which check refuses) counts for every list that has its id.
    """
    tests = {}
    for c in all_cites(files):
        if c.where != "test" or c.bad:
            continue
        versions = c.versions or [v for v in VERSION_NAMES if c.sid in lists[v]]
        for version in versions:
            tests.setdefault(c.test, (c.path, set()))[1].add((version, c.sid, c.server))
    return tests


def test_names(files):
    """Every test function's name."""
    names = set()
    for path, (lines, _) in files.items():
        test_code = test_lines(path, lines)
        for i, line in enumerate(lines):
            m = FN_RE.match(line)
            if m and is_test_fn(lines, i, i in test_code):
                names.add(m.group(1))
    return names


def source_citations(files, lists):
    """Maps (version, id) -> set of production files citing it.

    An untagged citation in a string literal counts only where one list alone has the id; one in
    a comment (which check refuses) counts for every list that has it.
    """
    found = {}
    for c in all_cites(files):
        if c.where != "source" or c.bad:
            continue
        versions = c.versions or [v for v in VERSION_NAMES if c.sid in lists[v]]
        if c.versions or len(versions) == 1 or not c.literal:
            for version in versions:
                found.setdefault((version, c.sid), set()).add(str(c.path.relative_to(ROOT)))
    return found


def citation_problems(files, lists):
    """Citations that break the rules of the docstring."""
    problems = []
    for c in all_cites(files):
        what = f"{c.loc()}: {c.test or c.where}"
        if c.bad:
            problems.append(
                f"{what}: malformed citation {c.bad} (tags: ' v3.1.1', ' v5.0', then ' server')"
            )
            continue
        if not c.versions:
            if c.where == "source" and c.literal:
                if not any(c.sid in lists[v] for v in VERSION_NAMES):
                    problems.append(f"{what}: {c.sid} is in neither statement list")
                continue
            problems.append(f"{what}: [{c.sid}] names no spec version (conformance.py migrate)")
            continue
        if len(set(c.versions)) < len(c.versions):
            problems.append(f"{what}: [{c.sid}] names a version twice")
        for version in c.versions:
            st = lists[version].get(c.sid)
            if st is None:
                problems.append(f"{what}: {c.sid} is not a statement of MQTT {version}")
                continue
            if c.server and st["binds"] != "server":
                problems.append(
                    f"{what}: {c.sid} v{version} binds {st['binds']}, not the server; cite it"
                    " without ' server'"
                )
            if c.where == "test" and st["binds"] == "server" and not c.server:
                problems.append(
                    f"{what}: {c.sid} v{version} binds the server ({st['summary']}); cite the"
                    " client's statement, or mark the citation ' server' if the test checks"
                    " the client's side of it"
                )
    return problems


def notes():
    """Reviewed statuses for statements no test checks: (version, id) -> status text."""
    with open(NOTES, newline="") as f:
        return {(r["version"], r["id"]): r["status"] for r in csv.DictReader(f, delimiter="\t")}


def kind(status):
    return status.split(":")[0]


def rows_for(files, lists):
    """The table's rows as generate writes them: {version: [(statement, where, tests, status)]}."""
    reviewed = notes()
    tests = test_citations(files, lists)
    sources = source_citations(files, lists)
    citing = {}
    for t, (_path, cited) in tests.items():
        for version, sid, server in cited:
            citing.setdefault((version, sid), {})[t] = server
    rows = {}
    for version in VERSION_NAMES:
        rows[version] = []
        for sid, st in lists[version].items():
            by = citing.get((version, sid), {})
            where = sorted(sources.get((version, sid), []))
            if st["binds"] != "server" and any(not server for server in by.values()):
                status = "tested"
            elif (version, sid) in reviewed:
                status = reviewed[(version, sid)]
            elif st["binds"] == "server":
                status = "server-only"
            elif where:
                status = "enforced-untested"
            else:
                status = "not yet"
            rows[version].append((st, where, sorted(by), status))
    return rows


def counts_for(rows):
    """{version: (statements, binding a client or the format, tested, {status kind: n})}."""
    out = {}
    for version, vrows in rows.items():
        by_kind = {}
        for _st, _where, _tests, status in vrows:
            by_kind[kind(status)] = by_kind.get(kind(status), 0) + 1
        relevant = sum(st["binds"] != "server" for st, *_ in vrows)
        out[version] = (len(vrows), relevant, by_kind.get("tested", 0), by_kind)
    return out


ROW_RE = re.compile(r"^\|\s*(MQTT-[0-9.\-]+)\s*\|(.*)\|\s*$")
SUMMARY_RE = re.compile(
    r"^\|\s*MQTT (3\.1\.1|5\.0)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|\s*(\d+)\s*\|(.*)\|\s*$"
)


def read_table():
    """Returns ({(version, id): row}, {version: summary counts}) from CONFORMANCE.md."""
    rows, summary = {}, {}
    version = None
    for line in TABLE.read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            version = "5.0" if "5.0" in line else "3.1.1" if "3.1.1" in line else None
            continue
        s = SUMMARY_RE.match(line)
        if s:
            others = {}
            for part in filter(None, (p.strip() for p in s.group(5).split(","))):
                name, _, n = part.rpartition(":")
                others[name.strip()] = int(n)
            summary[s.group(1)] = tuple(int(s.group(i)) for i in (2, 3, 4)) + (others,)
            continue
        m = ROW_RE.match(line)
        if not m or version is None:
            continue
        cells = [c.strip() for c in m.group(2).split("|")]
        if len(cells) < 5:
            continue
        binds, _summary, _where, tests, status = cells[:5]
        names = re.findall(r"`([A-Za-z_][A-Za-z0-9_]*)`", tests)
        rows[(version, m.group(1))] = {"binds": binds, "tests": names, "status": status}
    return rows, summary


def statuses(by_kind):
    return ", ".join(f"{k}: {n}" for k, n in sorted(by_kind.items()))


def print_counts(counts):
    print("spec   statements  binding a client or the format  tested  statuses")
    for version, (total, relevant, tested, by_kind) in counts.items():
        print(f"{version:<6} {total:>10}  {relevant:>30}  {tested:>6}  {statuses(by_kind)}")


def check():
    lists = spec()
    files = scan()
    problems = citation_problems(files, lists)
    reviewed = notes()
    expected = rows_for(files, lists)
    table, summary = read_table()
    existing = test_names(files)
    for version in VERSION_NAMES:
        for st, _where, tests, status in expected[version]:
            sid = st["id"]
            row = table.get((version, sid))
            if row is None:
                problems.append(f"{version} {sid}: missing from CONFORMANCE.md")
                continue
            if row["binds"] != st["binds"]:
                problems.append(
                    f"{version} {sid}: binds {row['binds']}, the list says {st['binds']}"
                )
            for t in row["tests"]:
                if t not in existing:
                    problems.append(f"{version} {sid}: test `{t}` does not exist")
                elif t not in tests:
                    problems.append(f"{version} {sid}: test `{t}` does not cite it")
            for t in tests:
                if t not in row["tests"]:
                    problems.append(f"{version} {sid}: `{t}` cites it but is not listed")
            if kind(row["status"]) == "tested" and st["binds"] == "server":
                problems.append(f"{version} {sid}: a server statement cannot be tested by a client")
            elif kind(row["status"]) == "tested" and kind(status) != "tested":
                problems.append(f"{version} {sid}: status tested but no test checks it")
            elif kind(status) == "tested" and kind(row["status"]) != "tested":
                problems.append(
                    f"{version} {sid}: tests check it but the status is {row['status']}"
                )
    listed = {(v, sid) for v in lists for sid in lists[v]}
    for version, sid in sorted(set(table) - listed):
        problems.append(f"{version} {sid}: in CONFORMANCE.md but not in the statement list")
    for (version, sid), status in sorted(reviewed.items()):
        st = lists.get(version, {}).get(sid)
        if st is None:
            problems.append(f"conformance-notes.tsv: {version} {sid} is not a statement")
        elif any(not server for t, (_, cited) in test_citations(files, lists).items()
                 for v, s, server in cited if (v, s) == (version, sid)):
            problems.append(f"conformance-notes.tsv: {version} {sid} is tested now; drop its note")
    # The counts of the rows as they are in the table, then the summary written above them.
    actual = {v: [] for v in VERSION_NAMES}
    for version in VERSION_NAMES:
        for sid, st in lists[version].items():
            row = table.get((version, sid))
            if row:
                actual[version].append((st, None, row["tests"], row["status"]))
    counts = counts_for(actual)
    for version, (total, relevant, tested, by_kind) in counts.items():
        if tested > relevant:
            problems.append(
                f"MQTT {version}: {tested} tested of {relevant} statements binding a client or"
                " the format"
            )
        if version not in summary:
            problems.append(f"MQTT {version}: no line in the summary")
            continue
        s_total, s_relevant, s_tested, s_others = summary[version]
        others = {k: n for k, n in by_kind.items() if k != "tested"}
        if (s_total, s_relevant, s_tested, s_others) != (total, relevant, tested, others):
            problems.append(
                f"MQTT {version}: the summary says {s_total} statements, {s_relevant} binding a"
                f" client or the format, {s_tested} tested, {statuses(s_others)}; the rows count"
                f" {total}, {relevant}, {tested}, {statuses(others)}"
            )
        if s_tested > s_relevant:
            problems.append(
                f"MQTT {version}: the summary counts {s_tested} tested of {s_relevant} statements"
                " binding a client or the format"
            )
    print_counts(counts)
    if problems:
        print("\n".join(problems))
        print(f"{len(problems)} conformance problems")
        return 1
    print("CONFORMANCE.md is consistent with the tests and the statement lists")
    return 0


HEADER = """# Conformance

Every normative statement of MQTT 3.1.1 and MQTT 5.0, and how this client meets it. The
statement ids, sections and whom each binds come from the specs' lists; the paraphrase is
ours. *binds* says who the statement is about: `client`, `server`, `both`, or `format` (the
packet format, enforced by the codec in both directions).

The two specs reuse ids for different statements, so every citation names its spec:
`[MQTT-3.1.2-18 v3.1.1]`, `[MQTT-3.1.2-16 v5.0]`. A test that checks the same rule in both
versions cites both statements, `[MQTT-3.3.1-2 v3.1.1 v5.0]` where the ids agree. A test cites
a statement binding the server only to check the client's side of it (how the client reacts to
what a server does or fails to do, the codec's check a server relies on, or the client applying
the rule to what it holds) and marks the citation so: `[MQTT-3.2.2-8 v5.0 server]`. Such a test
is listed on the statement's row, which stays server-only. Error messages of production code
may cite without a tag; they count under *enforced in* only where one spec alone has the id.

Status:
- **tested**: the named tests check it (each cites the statement in a comment);
- **enforced-untested** / **enforced by construction**: the code keeps it, no test checks it;
- **not applicable**: it cannot concern a client, with why;
- **server-only**: it binds the server alone (listed so the count is complete); tests named
  there check the client's side of it;
- **not yet**: it binds a client and is not met or not checked yet.

`python3 scripts/conformance.py check` (run by `.ci/run`) fails when a citation names no
version or a statement its spec lacks, when a test cites a server statement unmarked, when the
tests or status of a row differ from the tests' citations, when a statement is missing, or when
a count below differs from the rows. `python3 scripts/conformance.py generate` rebuilds this
file from the citations and `scripts/conformance-notes.tsv`;
`python3 scripts/conformance.py migrate` tags citations written without a version.
"""


def generate():
    lists = spec()
    files = scan()
    rows = rows_for(files, lists)
    out = [HEADER]
    for version in VERSION_NAMES:
        out.append(f"## MQTT {version}\n")
        out.append("| id | binds | statement (paraphrased) | enforced in | tests | status |")
        out.append("|---|---|---|---|---|---|")
        for st, where, tests, status in rows[version]:
            where_cell = ", ".join(f"`{p}`" for p in where)
            tests_cell = ", ".join(f"`{n}`" for n in tests)
            summary = st["summary"].replace("|", "\\|")
            out.append(
                f"| {st['id']} | {st['binds']} | {summary} | {where_cell} | {tests_cell}"
                f" | {status} |"
            )
        out.append("")
    lines = [
        "## Summary\n",
        "| spec | statements | binding a client or the format | tested | other statuses |",
        "|---|---|---|---|---|",
    ]
    for version, (total, relevant, tested, by_kind) in counts_for(rows).items():
        others = ", ".join(f"{k}: {v}" for k, v in sorted(by_kind.items()) if k != "tested")
        lines.append(f"| MQTT {version} | {total} | {relevant} | {tested} | {others} |")
    out.insert(1, "\n".join(lines) + "\n")
    print("\n".join(out))
    return 0


# --------------------------------------------------------------------------------------------
# migrate

ANNOTATION_RE = re.compile(r"\s*\(\s*(3\.1\.1 and 5\.0|both|3\.1\.1|5\.0)\s*(\)|;\s*)")
RUN_SEP_RE = re.compile(r"[\s,]*")
ALL_RE = re.compile(r"\bVERSIONS\b|\bfor version in\b")
V5_RE = re.compile(r"\bV5\b|\bv5_\w+\(")
V311_RE = re.compile(r"\bV3_1_1\b|\bV3\b")
NAME_V5_RE = re.compile(r"(?:^|_)(?:v5|mqtt_5)(?:_|$)")
NAME_V311_RE = re.compile(r"(?:^|_)(?:v3_1_1|mqtt_3_1_1|before_5_0|before_v5)(?:_|$)")
STOP = set(
    "a an the and or of to in on is are be its it as at by for from with without no not never"
    " any each every only must may this that than then when if once after before one".split()
)


def words(text):
    return {w for w in re.findall(r"[a-z0-9]+", text.lower()) if w not in STOP and len(w) > 1}


def similarity(x, y):
    wx, wy = words(x), words(y)
    return len(wx & wy) / max(1, len(wx | wy))


def annotation(line, cites_on_line, c):
    """The versions an annotation after c's run of citations names, and its span, or None."""
    pos = c.end
    later = sorted((d for d in cites_on_line if d.start >= c.end), key=lambda d: d.start)
    for d in later:
        gap = line[pos : d.start]
        if RUN_SEP_RE.fullmatch(gap):
            pos = d.end
        else:
            break
    m = ANNOTATION_RE.match(line, pos)
    if not m:
        return None
    versions = VERSION_NAMES if m.group(1) in ("both", "3.1.1 and 5.0") else [m.group(1)]
    return versions, (m.start(), m.end(), m.group(2).startswith(";"))


def annotation_start(line, cites_on_line, c):
    ann = annotation(line, cites_on_line, c)
    return ann[1][0] if ann else None


def code_of(lines, region):
    """The non-comment text of a region of lines."""
    out = []
    for line in lines[region[0] : region[1]]:
        code = line.split("//")[0] if not line.lstrip().startswith("//") else ""
        out.append(code)
    return "\n".join(out)


def comments_of(lines, region):
    return "\n".join(
        line.split("//", 1)[1] for line in lines[region[0] : region[1]] if "//" in line
    )


def runs_versions(lines, c):
    """The versions the enclosing test or function exercises, as far as its code says."""
    code = code_of(lines, c.region)
    name = c.test or ""
    if ALL_RE.search(code):
        return set(VERSION_NAMES)
    found = set()
    if V5_RE.search(code):
        found.add("5.0")
    if V311_RE.search(code):
        found.add("3.1.1")
    if not found and NAME_V311_RE.search(name):
        found.add("3.1.1")
    elif not found and NAME_V5_RE.search(name):
        found.add("5.0")
    return found


def decide(lines, c, cites_on_line, lists):
    """(versions, reason, annotation span) for an untagged citation, or (None, why, None)."""
    cands = [v for v in VERSION_NAMES if c.sid in lists[v]]
    if not cands:
        return None, "the id is in neither statement list", None
    runs = runs_versions(lines, c)
    ann = annotation(lines[c.line], cites_on_line, c)
    if ann:
        versions, span = ann
        missing = [v for v in versions if v not in cands]
        if missing:
            why = f"annotated {', '.join(versions)}, but MQTT {missing[0]} has no such id"
            return None, why, None
        if c.where == "test" and runs and not set(versions) <= runs:
            ran = ", ".join(sorted(runs))
            why = f"annotated {', '.join(versions)}, but the test runs {ran} only"
            return None, why, None
        return versions, "annotated", span
    if len(cands) == 1:
        if c.where == "test" and runs and cands[0] not in runs:
            ran = ", ".join(sorted(runs))
            why = f"only MQTT {cands[0]} has the id, but the test runs {ran} only"
            return None, why, None
        return cands, "in one list only", None
    a, b = (lists[v][c.sid]["summary"] for v in VERSION_NAMES)
    same = similarity(a, b) >= 0.6
    if len(runs) == 1:
        return sorted(runs), "the code runs this version only", None
    text = comments_of(lines, c.region) + " " + (c.test or "").replace("_", " ")
    if same and len(runs) == 2:
        return VERSION_NAMES, "the same rule in both specs, and the code runs both", None
    if same and not runs and c.where != "test":
        return VERSION_NAMES, "the same rule in both specs, and the code names no version", None
    score = {}
    for v in VERSION_NAMES:
        summary = words(lists[v][c.sid]["summary"])
        score[v] = len(summary & words(text)) / max(1, len(summary))
    best = max(VERSION_NAMES, key=score.get)
    other = [v for v in VERSION_NAMES if v != best][0]
    if not same and score[best] >= 0.5 and score[other] <= 0.34:
        why = f"its summary matches the comments ({score[best]:.2f} against {score[other]:.2f})"
        return [best], why, None
    return None, "cannot tell the version", None


WIDTH = 100
COMMENT_RE = re.compile(r"^(\s*(?://!|///|//(?![/!]))\s*)(\S.*)$")
WORD_RE = re.compile(r"\[[^\]]*\]\S*|\S+")
LIST_RE = re.compile(r"^(?:[-*+|#>]|```|\d+\.)")


def rewrap(lines, i):
    """Rewraps the comment paragraph starting at line i if a tag made the line too long."""
    m = COMMENT_RE.match(lines[i])
    if len(lines[i]) <= WIDTH or not m:
        return
    prefix = m.group(1)
    j = i + 1
    while j < len(lines):
        n = COMMENT_RE.match(lines[j])
        if not n or n.group(1) != prefix or LIST_RE.match(n.group(2)):
            break
        j += 1
    out, line = [], prefix
    for word in WORD_RE.findall(" ".join(COMMENT_RE.match(x).group(2) for x in lines[i:j])):
        if line != prefix and len(line) + 1 + len(word) > WIDTH:
            out.append(line)
            line = prefix
        line += ("" if line == prefix else " ") + word
    out.append(line)
    lines[i:j] = out


def render(c, versions):
    return f"[{c.sid} {' '.join('v' + v for v in versions)}]"


def migrate(args):
    dry = "--dry-run" in args
    paths = [Path(a).resolve() for a in args if not a.startswith("--")]
    lists = spec()
    files = scan()
    undecided = []
    changed = 0
    for path, (lines, cites) in files.items():
        if paths and not any(path == p or p in path.parents for p in paths):
            continue
        edits = {}  # line -> [(start, end, text)]
        keep = set()  # annotations that an undecided citation of their run still needs
        for c in cites:
            if c.versions or c.bad or (c.where == "source" and c.literal):
                continue
            on_line = [d for d in cites if d.line == c.line]
            versions, reason, span = decide(lines, c, on_line, lists)
            where = f"{c.loc()} ({c.test or c.where}) [{c.sid}]"
            if versions is None:
                undecided.append((where, reason, c))
                keep.add((c.line, annotation_start(lines[c.line], on_line, c)))
                continue
            server = [v for v in versions if lists[v][c.sid]["binds"] == "server"]
            if c.where == "test" and server:
                undecided.append((where, f"{reason}: v{', v'.join(server)} binds the server", c))
                keep.add((c.line, annotation_start(lines[c.line], on_line, c)))
                continue
            edits.setdefault(c.line, []).append((c.start, c.end, render(c, versions)))
            if span:
                start, end, more = span
                # "(3.1.1; 3.1 alike)" keeps "(3.1 alike)"; "(5.0)" goes with its spaces.
                edits[c.line].append((start, end, " (" if more else ""))
            if dry:
                print(f"{where} -> {render(c, versions)}: {reason}")
        if not edits:
            continue
        for i, line_edits in edits.items():
            line = lines[i]
            for start, end, text in sorted(set(line_edits), reverse=True):
                if (i, start) in keep:
                    continue
                line = line[:start] + text + line[end:]
            lines[i] = line
            changed += 1
        for i in sorted(edits, reverse=True):
            rewrap(lines, i)
        if not dry:
            ending = "\n" if path.read_text(encoding="utf-8").endswith("\n") else ""
            path.write_text("\n".join(lines) + ending, encoding="utf-8")
    print(f"{changed} lines {'would change' if dry else 'changed'}")
    if undecided:
        print(f"{len(undecided)} citations need a reader, who tags them by hand:")
        for where, reason, c in undecided:
            print(f"  {where}: {reason}")
            for v in VERSION_NAMES:
                st = lists[v].get(c.sid)
                if st:
                    print(f"      v{v} ({st['binds']}): {st['summary']}")
        return 1
    return 0


if __name__ == "__main__":
    cmd = sys.argv[1] if len(sys.argv) > 1 else "check"
    commands = {"check": check, "generate": generate, "migrate": lambda: migrate(sys.argv[2:])}
    sys.exit(commands.get(cmd, lambda: sys.exit(__doc__))())
