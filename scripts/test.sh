#!/usr/bin/env bash
# THE test command: formatting, lints, then every test, with the DynamoDB integration tests
# run twice, on two real DynamoDB engines:
#
#   scripts/test.sh [extra cargo test args]
#
# 1. DynamoDB Local (AWS's own engine): installed once into .tools/ and started on a free
#    loopback port; with AWS_ENDPOINT_URL set, that endpoint is used instead.
# 2. LocalStack (scripts/localstack.sh: localstack-core in host mode, no Docker), the
#    integration tests again, the localstack/ready.d hook among them.
#    TRIAGE_TEST_LOCALSTACK=0 leaves this pass out for a quick local run; CI keeps it on.
# Both servers are stopped on exit, whether the tests pass or not. A pass whose endpoint
# does not start fails; nothing is skipped quietly.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

started=$(date +%s)
say() { echo "test.sh: $*" >&2; }

# The report test opens `triage report`'s page in headless Chromium (Debian's package).
# Installed once; if it still cannot be found, that test fails and says why.
if ! command -v chromium >/dev/null 2>&1 && ! command -v chromium-browser >/dev/null 2>&1; then
    say "installing chromium (apt) for the report test"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null; } ||
        say "could not install chromium; the report test will fail"
fi

# The audio test makes a Matroska fixture with Debian's ffmpeg (tests/it/audio_fetch.rs).
# Installed once; if it still cannot be found, that test fails and says why.
if ! command -v ffmpeg >/dev/null 2>&1; then
    say "installing ffmpeg (apt) for the audio test"
    sudo=""
    if [[ $(id -u) -ne 0 ]]; then sudo="sudo"; fi
    { $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq ffmpeg >/dev/null; } ||
        say "could not install ffmpeg; the audio test will fail"
fi

# Local endpoints take any credentials; never fall through to instance metadata.
if [[ -z "${AWS_ACCESS_KEY_ID:-}" && -z "${AWS_PROFILE:-}" ]]; then
    export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
fi
if [[ -z "${AWS_REGION:-}${AWS_DEFAULT_REGION:-}" ]]; then
    export AWS_REGION=us-east-1
fi
export AWS_EC2_METADATA_DISABLED=true

localstack="${TRIAGE_TEST_LOCALSTACK:-1}"
export DDB_LOCAL_STATE="${DDB_LOCAL_STATE:-$PWD/.tools/dynamodb-local-test-$$}"
LOCALSTACK_STATE="$PWD/.tools/localstack-test-$$"
ddb_started=0
cleanup() {
    if ((ddb_started)); then scripts/dynamodb-local.sh stop || true; fi
    rm -rf "$DDB_LOCAL_STATE"
    if [[ -d "$LOCALSTACK_STATE" ]]; then
        scripts/localstack.sh stop "$LOCALSTACK_STATE" || true
        rm -rf "$LOCALSTACK_STATE"
    fi
}
trap cleanup EXIT

cargo fmt --check
cargo clippy --all-targets -- -D warnings

status=0
failed=()

# ---- pass 1: DynamoDB Local (or the given endpoint) -----------------------------------------
endpoint="${AWS_ENDPOINT_URL:-}"
if [[ -z "$endpoint" ]]; then
    if exports="$(scripts/dynamodb-local.sh start)"; then
        ddb_started=1
        eval "$exports"
        endpoint="$AWS_ENDPOINT_URL"
        engine="DynamoDB Local"
    else
        say "DynamoDB Local did not start: the first pass has no endpoint"
    fi
else
    engine="the given AWS_ENDPOINT_URL"
fi
if [[ -n "$endpoint" ]]; then
    say "pass 1: every test, DynamoDB on $engine at $endpoint"
    AWS_ENDPOINT_URL="$endpoint" cargo test --lib --bins --tests "$@" || { status=1; failed+=("pass 1 ($engine)"); }
else
    status=1
    failed+=("pass 1 (no endpoint)")
fi

# ---- pass 2: LocalStack ------------------------------------------------------------------
if [[ "$localstack" != "0" ]]; then
    if exports="$(scripts/localstack.sh start "$LOCALSTACK_STATE")"; then
        ls_endpoint="$(eval "$exports"; echo "$AWS_ENDPOINT_URL")"
        say "pass 2: the integration tests, DynamoDB on LocalStack (host mode) at $ls_endpoint"
        AWS_ENDPOINT_URL="$ls_endpoint" TRIAGE_TEST_AWSLOCAL="$PWD/.tools/localstack/venv/bin/awslocal" \
            cargo test --test it "$@" || { status=1; failed+=("pass 2 (LocalStack)"); }
        scripts/localstack.sh status "$LOCALSTACK_STATE" >&2 || true
    else
        say "LocalStack did not start: the LocalStack pass has no endpoint"
        status=1
        failed+=("pass 2 (LocalStack did not start)")
    fi
else
    say "pass 2 (LocalStack) left out: TRIAGE_TEST_LOCALSTACK=0"
fi

# ---- the Lambda and the stack ------------------------------------------------------------
# The real bootstrap under cargo-lambda's Lambda Runtime API emulator.
scripts/lambda-smoke.sh || { status=1; failed+=("lambda-smoke"); }
# The deployable stack: flow up to date, cfn-lint, sam validate --lint, the Lambda build.
scripts/check-template.sh || { status=1; failed+=("check-template"); }

took=$(($(date +%s) - started))
if [[ $status -eq 0 ]]; then
    say "all checks passed in ${took} s"
else
    say "FAILED after ${took} s: ${failed[*]}"
fi
exit "$status"
