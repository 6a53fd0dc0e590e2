#!/usr/bin/env python3
"""Fails if a generated API page shows an intra-doc link that did not resolve.

rustdoc leaves an unresolved link as its bracketed text (`[Client::connect]`), and does not
always warn (re-exported items, links in inlined docs). This scans the prose of every page
under target/doc for the crates of this workspace, outside code, for bracketed text that looks
like a link target. Spec citations (`[MQTT-3.1.2-3 v5.0]`) are prose, not links.

Usage: python3 scripts/doc-links.py [target/doc]
"""

import glob
import html
import os
import re
import sys

CRATES = ["mqtt_proto", "mqtt_session", "mqtt_io", "mqtt_tokio", "mqtt_async_std", "mqtt_testkit"]
DOCBLOCK = re.compile(r'<div class="docblock[^"]*">(.*?)</div>', re.S)
LINKLIKE = re.compile(r"\[`?[A-Za-z_][A-Za-z0-9_:#!<>`.\- ]{0,80}`?\]")


def unresolved(page: str) -> list[str]:
    hits = []
    for body in DOCBLOCK.findall(page):
        body = re.sub(r"<pre.*?</pre>", "", body, flags=re.S)
        # An unresolved [`Name`] keeps its brackets around the code span.
        hits += [f"[`{html.unescape(c)}`]" for c in re.findall(r"\[<code>([^<]{1,80})</code>\]", body)]
        body = re.sub(r"<code>.*?</code>", "", body, flags=re.S)
        text = html.unescape(re.sub(r"<[^>]+>", "", body))
        hits += [h for h in LINKLIKE.findall(text) if not h.startswith("[MQTT-")]
    return hits


def main() -> int:
    root = sys.argv[1] if len(sys.argv) > 1 else "target/doc"
    failures = 0
    for crate in CRATES:
        pages = glob.glob(os.path.join(root, crate, "**", "*.html"), recursive=True)
        if not pages:
            print(f"doc-links: no pages for {crate} under {root}", file=sys.stderr)
            return 1
        for path in pages:
            with open(path, encoding="utf-8") as f:
                for hit in unresolved(f.read()):
                    print(f"{os.path.relpath(path, root)}: unresolved link {hit}")
                    failures += 1
    if failures:
        print(f"doc-links: {failures} unresolved links", file=sys.stderr)
        return 1
    print("doc-links: every link on every page resolved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
