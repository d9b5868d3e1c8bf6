#!/usr/bin/env bash
# The Python the tests run their checkers with (tests/it/athena.rs: DuckDB over DynamoDB
# export files): .tools/pyenv, a venv on this machine's Python with its packages (boto3,
# PyYAML) plus tests/python-requirements.txt (pinned), installed once and again whenever
# that file changes. Prints the interpreter's path. Safe to run from parallel tests (flock).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
VENV=.tools/pyenv
REQ=tests/python-requirements.txt
mkdir -p .tools
exec 9>.tools/pyenv.lock
flock 9
stamp="$VENV/.requirements"
if ! [ -x "$VENV/bin/python" ] || ! cmp -s "$REQ" "$stamp"; then
    echo "pyenv: installing $(grep -v '^#' "$REQ" | tr '\n' ' ')into $VENV" >&2
    [ -x "$VENV/bin/python" ] || python3 -m venv --system-site-packages "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$REQ" >&2
    cp "$REQ" "$stamp"
fi
echo "$PWD/$VENV/bin/python"
