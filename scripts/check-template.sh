#!/usr/bin/env bash
# Checks the deployable stack without an AWS account:
#   1. template.yaml's flow and test cases are up to date with connect/triage-flow.json and
#      connect/test-cases/ (scripts/gen-template.py --check); the test cases follow Connect's
#      testing language (scripts/check-test-cases.py, jsonschema against connect/testing-language.schema.json)
#   2. cfn-lint on template.yaml, for every region where Amazon Connect runs the stack's resources
#   3. sam validate --lint (SAM's own transform and lint)
#   4. cargo lambda build --release --arm64 --bin bootstrap (and --bin projector): the very
#      binaries `sam build` makes
# aws-sam-cli, cfn-lint and cargo-lambda come from PyPI into .tools/venv (cargo-lambda bundles
# Zig, so the arm64 cross-build needs no Docker; rustup adds the aarch64 std if missing).
# The Rust test tests/it/template.rs (table == migrations/, flow == connect/) runs with the
# other tests: `cargo test --test it template`.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.tools/venv
export SAM_CLI_TELEMETRY=0
# Any region with Amazon Connect (AWS::Connect::* do not exist elsewhere, and the linters say so).
REGION=${AWS_REGION:-${AWS_DEFAULT_REGION:-us-east-1}}

need=()
[ -x "$VENV/bin/sam" ] || need+=(aws-sam-cli)
[ -x "$VENV/bin/cargo-lambda" ] || need+=(cargo-lambda)
# cfn-lint 1.58.0 is the first release that knows AWS::Connect::TestCase: pinned.
CFN_LINT=cfn-lint==1.58.0
if ! [ -x "$VENV/bin/cfn-lint" ] || [ "$("$VENV/bin/cfn-lint" --version 2>/dev/null)" != "cfn-lint ${CFN_LINT#cfn-lint==}" ]; then
  need+=("$CFN_LINT")
fi
if [ ${#need[@]} -gt 0 ]; then
  echo "check-template: installing ${need[*]} into $VENV" >&2
  [ -x "$VENV/bin/pip" ] || python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet "${need[@]}"
fi
export PATH="$PWD/$VENV/bin:$PATH"

echo "== gen-template --check"
python3 scripts/gen-template.py --check

echo "== the native test cases against the testing language"
"$VENV/bin/python" scripts/check-test-cases.py

echo "== cfn-lint $(cfn-lint --version)"
cfn-lint --regions us-east-1 us-west-2 eu-central-1 eu-west-2 ap-southeast-2 ap-northeast-1 ca-central-1 -- template.yaml
echo "cfn-lint: ok"

echo "== sam validate --lint ($(sam --version), region $REGION)"
sam validate --lint --template template.yaml --region "$REGION"

# The template deploys arm64 (Graviton). rustup fetches the aarch64 standard library from
# the Rust distribution server; on a machine that cannot reach it, build x86_64 instead and
# say so loudly (the template's Architectures would then need x86_64 too, see template.yaml).
arch=--arm64; want="ARM aarch64"
if ! rustup target list --installed 2>/dev/null | grep -qx aarch64-unknown-linux-gnu; then
  if ! rustup target add aarch64-unknown-linux-gnu; then
    echo "check-template: WARNING: cannot install the aarch64 target here; building x86_64 instead" >&2
    arch=--x86-64; want="x86-64"
  fi
fi
# Both functions' binaries: bootstrap (the turn) and projector (the stream -> read model).
target=${CARGO_TARGET_DIR:-target}
built=()
for bin in bootstrap projector; do
  echo "== cargo lambda build --release $arch --bin $bin"
  cargo lambda build --release "$arch" --bin "$bin"
  binary="$target/lambda/$bin/bootstrap"
  [ -f "$binary" ] || { echo "check-template: no $binary after the build" >&2; exit 1; }
  if command -v file >/dev/null; then
    kind=$(file -b "$binary")
    echo "$binary: $kind"
    case "$kind" in
      *"$want"*) ;;
      *) echo "check-template: $binary is not a $want binary" >&2; exit 1 ;;
    esac
  fi
  # Issue 14, point 4: the stripped bootstrap deploys in at most 10 MB.
  bytes=$(stat -c %s "$binary")
  if [ "$bin" = bootstrap ] && [ "$bytes" -gt $((10 * 1024 * 1024)) ]; then
    echo "check-template: $binary is $bytes bytes, over the 10 MB the turn's binary may take" >&2
    exit 1
  fi
  built+=("$binary, $(du -h "$binary" | cut -f1), $bytes bytes")
done
echo "check-template: ok (${built[*]})"
