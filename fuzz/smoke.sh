#!/usr/bin/env bash
# Fuzz smoke test: runs every fuzz target for a short time, starting from the seed corpora in
# seeds/<target>/, and fails on the first crash, panic, leak or timeout.
#
#   FUZZ_SECONDS     seconds per target (default 30)
#   FUZZ_TARGETS     space-separated targets to run (default: every target `cargo fuzz list` shows)
#   FUZZ_TOOLCHAIN   `nightly` or `stable`; by default nightly when rustup has it, else stable
#
# On stable, RUSTC_BOOTSTRAP=1 lets cargo-fuzz pass its unstable sanitizer flags. Installs
# cargo-fuzz when it is missing.
# A crashing input is left in artifacts/<target>/; reproduce it with
#   cargo fuzz run <target> artifacts/<target>/<file>
set -euo pipefail
cd "$(dirname "$0")"

seconds="${FUZZ_SECONDS:-30}"

if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

toolchain="${FUZZ_TOOLCHAIN:-}"
if [ -z "$toolchain" ]; then
    if rustup toolchain list 2>/dev/null | grep -q '^nightly'; then
        toolchain=nightly
    else
        toolchain=stable
    fi
fi
if [ "$toolchain" = nightly ]; then
    fuzz=(cargo +nightly fuzz)
    fetch=(cargo +nightly fetch)
else
    export RUSTC_BOOTSTRAP=1
    fuzz=(cargo fuzz)
    fetch=(cargo fetch)
fi
echo "==> fuzzing with the $toolchain toolchain"

# The lock file is committed: refuse to run if it is out of date.
"${fetch[@]}" --locked --manifest-path Cargo.toml

read -r -a targets <<<"${FUZZ_TARGETS:-$("${fuzz[@]}" list | tr '\n' ' ')}"
if [ "${#targets[@]}" -eq 0 ]; then
    echo "no fuzz targets found" >&2
    exit 1
fi

"${fuzz[@]}" build

for target in "${targets[@]}"; do
    corpus="corpus/$target"
    mkdir -p "$corpus"
    if [ -d "seeds/$target" ]; then
        cp -n "seeds/$target"/* "$corpus"/ 2>/dev/null || true
    fi
    echo "==> fuzz $target for ${seconds}s"
    "${fuzz[@]}" run "$target" "$corpus" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=4096 -print_final_stats=1
done
echo "fuzz smoke: ${#targets[@]} targets ran ${seconds}s each without a crash"
