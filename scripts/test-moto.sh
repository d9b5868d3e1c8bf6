#!/usr/bin/env bash
# Runs the DynamoDB integration tests against moto (a second, independent emulator):
#
#   scripts/test-moto.sh [extra cargo test args]
#
# Starts `moto_server` on a free loopback port and stops it on exit.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

command -v moto_server >/dev/null || { echo "test-moto.sh: moto_server not found (pip install 'moto[server]')" >&2; exit 1; }
port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()')"
log="$(mktemp -t moto.XXXXXX.log)"
moto_server -H 127.0.0.1 -p "$port" >"$log" 2>&1 &
moto_pid=$!
trap 'kill "$moto_pid" 2>/dev/null || true; wait "$moto_pid" 2>/dev/null || true; rm -f "$log"' EXIT
for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    kill -0 "$moto_pid" 2>/dev/null || { echo "test-moto.sh: moto_server exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
done
echo "test-moto.sh: moto on 127.0.0.1:$port" >&2

export AWS_ENDPOINT_URL="http://127.0.0.1:$port"
export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true
status=0
# moto is a Python mock: a TransactWriteItems on a 1,000-event stream, or eight calls at
# once, take it seconds that DynamoDB spends in milliseconds. The suite runs with the SDK
# timeouts and the turn budget raised (test doubles only; production keeps its numbers)...
TRIAGE_DDB_ATTEMPT_TIMEOUT_MS=4000 TRIAGE_DDB_OPERATION_TIMEOUT_MS=8000 TRIAGE_TURN_BUDGET_MS=20000 \
    cargo test --test it "$@" -- --skip faults:: || status=$?
# ...except the fault tests, which check the production time budget itself.
cargo test --test it "$@" faults:: || status=$?
exit "$status"
