#!/usr/bin/env bash
# Every performance figure in README.md, in one run (issue 7). Benchmarks, not tests: no
# assertion on time anywhere in the test suite.
#   scripts/bench.sh [CALLS]
# 1. stripped release binary sizes (lto, codegen-units=1, strip, panic=abort);
# 2. CPU per turn next to the seed's Node.js handler, and growth (benches/turn_cost.rs);
# 3. cold start, peak RSS over 1,000 invocations, `triage invoke` wall time (benches/process.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins --quiet
target=${CARGO_TARGET_DIR:-target}
for b in bootstrap triage; do
  printf 'binary %-9s %6.1f MB stripped (target <= 10 MB)\n' "$b" "$(echo "$(stat -c %s "$target/release/$b") / 1048576" | bc -l)"
done
cargo bench --quiet --bench turn_cost -- "${1:-20000}"
cargo bench --quiet --bench process
