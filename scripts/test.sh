#!/usr/bin/env bash
# Runs every check CI runs: formatting, lints, docs, and the whole test suite,
# including the PostgreSQL tests against a real, throwaway server.
#
# PostgreSQL: unless SYNDICATE_TEST_POSTGRES_URL is already set (then that
# server is used as it is, and the restart test is skipped unless
# SYNDICATE_TEST_PG_CTL is set too), this script
#   - finds `initdb` and `pg_ctl` (in PATH or /usr/lib/postgresql/*/bin/), and
#     when they are missing installs Debian's `postgresql` package with apt-get
#     (needs root);
#   - creates a cluster in a temporary directory (owned by the `postgres` user
#     when run as root, by the current user otherwise), trust authentication,
#     superuser `postgres`, listening on 127.0.0.1 only, on a free port, with
#     its socket in the temporary directory; durability settings stay at their
#     defaults (fsync, synchronous_commit) so the crash tests mean something;
#   - waits, with a deadline, until it accepts connections;
#   - exports
#       SYNDICATE_TEST_POSTGRES_URL  postgres://postgres@127.0.0.1:PORT/postgres,
#                                    the admin URL; each test creates its own
#                                    database through it;
#       SYNDICATE_TEST_PG_CTL        an executable that runs pg_ctl on this
#                                    cluster (-D given) as the cluster's owner,
#                                    e.g. `"$SYNDICATE_TEST_PG_CTL" restart -m fast -w`;
#   - stops the server and removes the directory on exit, failure included.
#
# Python: unless SYNDICATE_TEST_PYTHON is already set, the script creates a
# throwaway virtualenv (removed on exit) with the PyPI packages the
# cross-language tests need (`cryptography` for the independent verifier's
# signature checks, `mcp` for the MCP proxy tests) and exports
#       SYNDICATE_TEST_PYTHON        the virtualenv's python.
# When it cannot be created, tests that need it skip with a message, and fail
# under CI=true.
#
# With arguments, the script starts the server and runs them instead of the
# checks, e.g. `scripts/test.sh cargo test -p syndicate-store-postgres`.
#
# Tests that need PostgreSQL skip with a message when the URL is unset, and
# fail instead when CI=true.
set -euo pipefail
cd "$(dirname "$0")/.."

PG_DIR=""
PG_CTL_CMD=""
VENV_DIR=""

log() { echo "== $*"; }

find_pg_bin() {
    local name=$1 dir
    if command -v "$name" >/dev/null 2>&1; then
        command -v "$name"
        return 0
    fi
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/$name" ]; then
            echo "$dir/$name"
            return 0
        fi
    done
    return 1
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        if command -v runuser >/dev/null 2>&1; then
            runuser -u postgres -- "$@"
        else
            su postgres -s /bin/sh -c "$(printf '%q ' "$@")"
        fi
    else
        "$@"
    fi
}

free_port() {
    if command -v python3 >/dev/null 2>&1; then
        python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
    else
        echo $((20000 + RANDOM % 40000))
    fi
}

stop_postgres() {
    if [ -n "$PG_DIR" ] && [ -d "$PG_DIR" ]; then
        if [ -f "$PG_DIR/data/postmaster.pid" ]; then
            as_owner "$PG_CTL" -D "$PG_DIR/data" stop -m immediate -w >/dev/null 2>&1 || true
        fi
        rm -rf "$PG_DIR"
    fi
}

cleanup() {
    stop_postgres
    if [ -n "$VENV_DIR" ] && [ -d "$VENV_DIR" ]; then
        rm -rf "$VENV_DIR"
    fi
}

# The PyPI packages the cross-language tests use, in a throwaway virtualenv.
start_python() {
    VENV_DIR=$(mktemp -d "${TMPDIR:-/tmp}/syndicate-venv.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT TERM
    if python3 -m venv "$VENV_DIR" >"$VENV_DIR.log" 2>&1 \
        && "$VENV_DIR/bin/python" -m pip install -q cryptography mcp >>"$VENV_DIR.log" 2>&1; then
        export SYNDICATE_TEST_PYTHON="$VENV_DIR/bin/python"
        log "python packages for the cross-language tests in $VENV_DIR"
    else
        echo "scripts/test.sh: could not create the test virtualenv (cryptography, mcp):" >&2
        cat "$VENV_DIR.log" >&2 || true
        if [ "${CI:-}" = "true" ]; then
            exit 1
        fi
    fi
    rm -f "$VENV_DIR.log"
}

start_postgres() {
    local initdb pg_isready port attempt deadline
    if ! initdb=$(find_pg_bin initdb); then
        log "initdb not found: installing Debian's postgresql package"
        if [ "$(id -u)" -ne 0 ]; then
            echo "scripts/test.sh: initdb is missing and installing postgresql needs root;" \
                "install it (apt-get install postgresql) or set SYNDICATE_TEST_POSTGRES_URL" >&2
            exit 1
        fi
        DEBIAN_FRONTEND=noninteractive apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
        initdb=$(find_pg_bin initdb)
    fi
    local bindir
    bindir=$(dirname "$(readlink -f "$initdb")")
    PG_CTL="$bindir/pg_ctl"
    pg_isready="$bindir/pg_isready"
    [ -x "$pg_isready" ] || pg_isready=$(find_pg_bin pg_isready)

    PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/syndicate-pg.XXXXXX")
    chmod 755 "$PG_DIR"
    if [ "$(id -u)" -eq 0 ]; then
        chown postgres: "$PG_DIR"
    fi
    trap cleanup EXIT
    trap 'exit 130' INT TERM

    as_owner "$initdb" -D "$PG_DIR/data" -A trust -U postgres -E UTF8 --no-locale \
        >"$PG_DIR/initdb.log" 2>&1 || {
        cat "$PG_DIR/initdb.log" >&2
        exit 1
    }

    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        if as_owner "$PG_CTL" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $PG_DIR -c max_connections=300" \
            start >/dev/null 2>&1; then
            break
        fi
        if [ "$attempt" -eq 5 ]; then
            echo "scripts/test.sh: postgres did not start; its log:" >&2
            cat "$PG_DIR/server.log" >&2 || true
            exit 1
        fi
    done

    deadline=$((SECONDS + 60))
    until "$pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            echo "scripts/test.sh: postgres on port $port not ready after 60 s; its log:" >&2
            cat "$PG_DIR/server.log" >&2 || true
            exit 1
        fi
        sleep 0.2
    done

    # A wrapper so tests can run pg_ctl on this cluster as its owner.
    PG_CTL_CMD="$PG_DIR/pg_ctl"
    {
        echo '#!/usr/bin/env bash'
        declare -f as_owner
        printf 'as_owner %q -D %q -l %q "$@"\n' "$PG_CTL" "$PG_DIR/data" "$PG_DIR/server.log"
    } >"$PG_CTL_CMD"
    chmod 755 "$PG_CTL_CMD"
    export SYNDICATE_TEST_POSTGRES_URL="postgres://postgres@127.0.0.1:$port/postgres"
    export SYNDICATE_TEST_PG_CTL="$PG_CTL_CMD"
    log "postgres $("$PG_CTL" --version | awk '{print $3}') on 127.0.0.1:$port ($PG_DIR)"
}

if [ -z "${SYNDICATE_TEST_POSTGRES_URL:-}" ]; then
    start_postgres
else
    log "using the PostgreSQL server at SYNDICATE_TEST_POSTGRES_URL"
fi

if [ -z "${SYNDICATE_TEST_PYTHON:-}" ]; then
    start_python
else
    log "using the python at SYNDICATE_TEST_PYTHON"
fi

if [ "$#" -gt 0 ]; then
    "$@"
    exit $?
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo doc"
RUSTDOCFLAGS=-Dwarnings cargo doc --workspace --no-deps --quiet
echo "== cargo test"
cargo test --workspace
