#!/usr/bin/env bash
# THE test command: formatting, lints, then every test, DynamoDB integration tests included.
#
#   scripts/test.sh [extra cargo test args]
#
# With AWS_ENDPOINT_URL unset, installs (once, into .tools/) and starts DynamoDB Local on a
# free loopback port, and stops it on exit, whether the tests pass or not. With
# AWS_ENDPOINT_URL set (LocalStack, moto, a shared DynamoDB Local), uses that endpoint.
# Test tables are created by the tests themselves, through `migrate`.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

# The report test opens `triage report`'s page in headless Chromium (Debian's package).
# Installed once; if it still cannot be found, that test fails and says why.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    echo "test.sh: installing chromium (apt) for the report test" >&2
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; } ||
        echo "test.sh: could not install chromium; the report test will fail" >&2
fi

if [[ -z "${AWS_ENDPOINT_URL:-}" ]]; then
    export DDB_LOCAL_STATE="${DDB_LOCAL_STATE:-$PWD/.tools/dynamodb-local-test-$$}"
    trap 'scripts/dynamodb-local.sh stop; rm -rf "$DDB_LOCAL_STATE"' EXIT
    exports="$(scripts/dynamodb-local.sh start)"
    eval "$exports"
fi
echo "test.sh: DynamoDB endpoint $AWS_ENDPOINT_URL" >&2

# Local endpoints take any credentials; never fall through to instance metadata.
if [[ -z "${AWS_ACCESS_KEY_ID:-}" && -z "${AWS_PROFILE:-}" ]]; then
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
fi
if [[ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ]]; then
    export AWS_REGION=us-east-1
fi
export AWS_EC2_METADATA_DISABLED=true

cargo fmt --check
cargo clippy --all-targets -- -D warnings
status=0
cargo test --lib --bins --tests "$@" || status=$?
# The real bootstrap under cargo-lambda's Lambda Runtime API emulator.
scripts/lambda-smoke.sh || status=$?
# The deployable stack: flow up to date, cfn-lint, sam validate --lint, the Lambda build.
scripts/check-template.sh || status=$?
if [[ $status -eq 0 ]]; then echo "test.sh: all checks passed"; else echo "test.sh: FAILED (exit $status)" >&2; fi
exit "$status"
