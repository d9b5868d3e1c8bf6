#!/usr/bin/env bash
# Runs the real `bootstrap` under cargo-lambda's Lambda Runtime API emulator
# (`cargo lambda watch`) and invokes it with `cargo lambda invoke`, as the README shows:
# a first turn, the answer to it, and Connect's retry of that answer.
# cargo-lambda comes from PyPI into .tools/venv (offline-friendly: it bundles Zig).
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=.tools/venv
if [ ! -x "$VENV/bin/cargo-lambda" ]; then
  echo "lambda-smoke: installing cargo-lambda into $VENV" >&2
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install --quiet cargo-lambda
fi
export PATH="$PWD/$VENV/bin:$PATH"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cargo lambda watch --bin bootstrap --invoke-address 127.0.0.1 --invoke-port "$port" --ignore-changes --quiet \
  --env-var "TRIAGE_STORE=file:$work/events.jsonl" --env-var AWS_LAMBDA_LOG_FORMAT=JSON \
  >"$work/watch.log" 2>&1 &
watch_pid=$!
cleanup() { kill "$watch_pid" 2>/dev/null || true; wait "$watch_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

invoke() { cargo lambda invoke bootstrap --invoke-address 127.0.0.1 --invoke-port "$port" --data-file "$1"; }
first="$work/first.json"
cp tests/fixtures/connect-first-turn.json "$first"
for _ in $(seq 1 120); do   # the emulator compiles the function on first use
  if out=$(invoke "$first" 2>/dev/null); then break; fi
  sleep 1
done
echo "first turn: $out"
turn=$(python3 -c 'import json,sys; r=json.loads(sys.argv[1]); assert r["continue"]=="1" and r["question"]=="contact", r; print(r["turn"])' "$out")
python3 - "$first" "$work/answer.json" "$turn" <<'PY'
import json, sys
ev = json.load(open(sys.argv[1]))
ev["Details"]["Parameters"] = {"answer": "1", "turn": sys.argv[3]}
json.dump(ev, open(sys.argv[2], "w"))
PY
a=$(invoke "$work/answer.json"); echo "answer 1:   $a"
b=$(invoke "$work/answer.json"); echo "retry:      $b"
python3 -c 'import json,sys; a,b=json.loads(sys.argv[1]),json.loads(sys.argv[2]); assert a==b and a["score"]=="15" and a["question"]=="breathing", (a,b)' "$a" "$b"
lines=$(wc -l < "$work/events.jsonl")
[ "$lines" -eq 2 ] || { echo "lambda-smoke: expected 2 events, found $lines" >&2; exit 1; }
echo "lambda-smoke: ok (bootstrap answered cargo-lambda's Runtime API; the retry recorded nothing)"
