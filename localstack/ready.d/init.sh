#!/usr/bin/env bash
# LocalStack "ready" hook: creates the triage table by applying migrations/NNNN_*.json in
# order with the AWS CLI, exactly the API calls `triage migrate` makes (the file's "input" is
# the call's --cli-input-json, with TableName replaced). Idempotent: a step whose effect is
# already there is skipped. It does not write the `#migrations` records; a later
# `triage migrate` against this endpoint finds every effect present and records them.
set -euo pipefail

TABLE="${TRIAGE_TABLE:-triage-events}"
DIR="${MIGRATIONS_DIR:-/migrations}"

input_for() { # file -> the call's input JSON with TableName replaced
    python3 - "$1" "$TABLE" <<'PY'
import json, sys
m = json.load(open(sys.argv[1]))
m["input"]["TableName"] = sys.argv[2]
print(json.dumps(m["input"]))
PY
}

operation_of() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["operation"])' "$1"
}

wait_active() {
    for _ in $(seq 1 120); do
        if awslocal dynamodb describe-table --table-name "$TABLE" --output json | python3 -c '
import json, sys
t = json.load(sys.stdin)["Table"]
ok = t["TableStatus"] == "ACTIVE" and all(i["IndexStatus"] == "ACTIVE" for i in t.get("GlobalSecondaryIndexes", []))
sys.exit(0 if ok else 1)'; then
            return 0
        fi
        sleep 1
    done
    echo "init.sh: $TABLE not ACTIVE after 120 s" >&2
    return 1
}

for file in "$DIR"/[0-9][0-9][0-9][0-9]_*.json; do
    name="$(basename "$file" .json)"
    op="$(operation_of "$file")"
    input="$(input_for "$file")"
    case "$op" in
        CreateTable)
            if awslocal dynamodb describe-table --table-name "$TABLE" >/dev/null 2>&1; then
                echo "init.sh: $name: skipped, table $TABLE exists"
            else
                awslocal dynamodb create-table --cli-input-json "$input" >/dev/null
                echo "init.sh: $name: applied"
            fi
            ;;
        UpdateTable)
            index="$(python3 -c 'import json,sys; print(json.loads(sys.argv[1])["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"])' "$input")"
            if awslocal dynamodb describe-table --table-name "$TABLE" --output json | python3 -c '
import json, sys
t = json.load(sys.stdin)["Table"]
sys.exit(0 if any(i["IndexName"] == sys.argv[1] for i in t.get("GlobalSecondaryIndexes", [])) else 1)' "$index"; then
                echo "init.sh: $name: skipped, index $index exists"
            else
                awslocal dynamodb update-table --cli-input-json "$input" >/dev/null
                echo "init.sh: $name: applied"
            fi
            ;;
        UpdateTimeToLive)
            status="$(awslocal dynamodb describe-time-to-live --table-name "$TABLE" --query 'TimeToLiveDescription.TimeToLiveStatus' --output text)"
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
    wait_active
done
echo "init.sh: table $TABLE is ready"
