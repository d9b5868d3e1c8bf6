#!/usr/bin/env bash
# LocalStack "ready" hook: creates the triage table (and its read model's table,
# TABLE-model) by applying migrations/NNNN_*.json in order with the AWS CLI, exactly the API
# calls `triage migrate` makes (the file's "input" is the call's --cli-input-json, with the
# TableName placeholder replaced: triage-events -> TABLE, triage-events-model -> TABLE-model). Idempotent: a step whose effect is
# already there is skipped. It does not write the `#migrations` records; a later
# `triage migrate` against this endpoint finds every effect present and records them.
set -euo pipefail

TABLE="${TRIAGE_TABLE:-triage-events}"
DIR="${MIGRATIONS_DIR:-/migrations}"

target_of() { # file -> the table it applies to
    python3 - "$1" "$TABLE" <<'PY'
import json, sys
name = json.load(open(sys.argv[1]))["input"]["TableName"]
print({"triage-events": sys.argv[2], "triage-events-model": sys.argv[2] + "-model"}[name])
PY
}

input_for() { # file, table -> the call's input JSON with TableName replaced
    python3 - "$1" "$2" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["input"]["TableName"] = sys.argv[2]
print(json.dumps(m["input"]))
PY
}

operation_of() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["operation"])' "$1"
}

wait_active() { # table
    for _ in $(seq 1 120); do
        if awslocal dynamodb describe-table --table-name "$1" --output json | python3 -c '
import json, sys
t = json.load(sys.stdin)["Table"]
ok = t["TableStatus"] == "ACTIVE" and all(i["IndexStatus"] == "ACTIVE" for i in t.get("GlobalSecondaryIndexes", []))
sys.exit(0 if ok else 1)'; then
            return 0
        fi
        sleep 1
    done
    echo "init.sh: $1 not ACTIVE after 120 s" >&2
    return 1
}

for file in "$DIR"/[0-9][0-9][0-9][0-9]_*.json; do
    name="$(basename "$file" .json)"
    op="$(operation_of "$file")"
    target="$(target_of "$file")"
    input="$(input_for "$file" "$target")"
    case "$op" in
        CreateTable)
            if awslocal dynamodb describe-table --table-name "$target" >/dev/null 2>&1; then
                echo "init.sh: $name: skipped, table $target exists"
            else
                awslocal dynamodb create-table --cli-input-json "$input" >/dev/null
                echo "init.sh: $name: applied"
            fi
            ;;
        UpdateTable)
            # An index or the stream (one change per migration, as `triage migrate` checks).
            what="$(python3 -c '
import json, sys
i = json.loads(sys.argv[1])
print("stream" if "StreamSpecification" in i else "index " + i["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"])' "$input")"
            if awslocal dynamodb describe-table --table-name "$target" --output json | python3 -c '
import json, sys
t = json.load(sys.stdin)["Table"]
what = sys.argv[1]
if what == "stream":
    sys.exit(0 if t.get("StreamSpecification", {}).get("StreamEnabled") else 1)
sys.exit(0 if any(i["IndexName"] == what[len("index "):] for i in t.get("GlobalSecondaryIndexes", [])) else 1)' "$what"; then
                echo "init.sh: $name: skipped, $what exists"
            else
                awslocal dynamodb update-table --cli-input-json "$input" >/dev/null
                echo "init.sh: $name: applied"
            fi
            ;;
        UpdateTimeToLive)
            status="$(awslocal dynamodb describe-time-to-live --table-name "$target" --query 'TimeToLiveDescription.TimeToLiveStatus' --output text)"
            if [[ "$status" == "ENABLED" || "$status" == "ENABLING" ]]; then
                echo "init.sh: $name: skipped, TTL is $status"
            else
                awslocal dynamodb update-time-to-live --cli-input-json "$input" >/dev/null
                echo "init.sh: $name: applied"
            fi
            ;;
        *)
            echo "init.sh: $name: unsupported operation $op" >&2
            exit 1
            ;;
    esac
    wait_active "$target"
done
echo "init.sh: table $TABLE and its read model $TABLE-model are ready"
