# shellcheck shell=bash
# A throwaway PostgreSQL server for the knowledge-base tests (tests/store).
#
# Source it; do not execute it:
#
#     source .ci/postgres.sh      # starts a server, exports LLP_TEST_POSTGRES_URL
#     make test                   # tests/store also runs against PostgreSQL
#     llp_stop_postgres           # stops the server and deletes its files
#
# What sourcing does:
#   1. finds initdb/pg_ctl (Debian keeps them in /usr/lib/postgresql/<version>/bin); if
#      absent and running as root, installs Debian's `postgresql` package (apt-get update
#      first; needs the Debian mirrors only);
#   2. creates a cluster in a fresh temporary directory, owned by the `postgres` user when
#      run as root (initdb refuses to run as root), by the current user otherwise;
#   3. starts it listening on 127.0.0.1 only, on the first free port from
#      LLP_PG_PORT (default 55432), with its socket in the temporary directory;
#   4. creates the user `llp` (password `llp`, allowed to create the per-test databases)
#      and its database `llp`, waits until the server accepts connections, and exports
#      LLP_TEST_POSTGRES_URL=postgresql://llp:llp@127.0.0.1:<port>/llp.
#
# Sourcing it again while its server runs only re-exports the URL (idempotent).
# llp_stop_postgres is also chained onto the shell's EXIT trap as a safety net (an
# existing EXIT trap is kept and still runs); .ci/run should call it itself anyway.
# The server trades durability for speed (fsync off): it is for tests only.

_llp_pg_say() { printf '[postgres.sh] %s\n' "$*" >&2; }

_llp_pg_bindir() {
    local dir
    for dir in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
            printf '%s\n' "$dir"
            return 0
        fi
    done
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return 0
    fi
    return 1
}

_llp_pg_install() {
    if [ "$(id -u)" -ne 0 ]; then
        _llp_pg_say "initdb/pg_ctl not found and not root: install Debian's 'postgresql' package first."
        return 1
    fi
    _llp_pg_say "installing Debian's postgresql package"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2 || return 1
    apt-get install -y -qq --no-install-recommends postgresql >&2 || return 1
}

# Run a command as the cluster's owner.
_llp_pg_as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        runuser -u "$LLP_PG_OWNER" -- "$@"
    else
        "$@"
    fi
}

_llp_pg_port_busy() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

_llp_pg_running() {
    [ -n "${LLP_PG_DIR:-}" ] && [ -n "${LLP_PG_BIN:-}" ] && [ -d "${LLP_PG_DIR}/data" ] &&
        _llp_pg_as_owner "$LLP_PG_BIN/pg_ctl" -D "$LLP_PG_DIR/data" status >/dev/null 2>&1
}

# Chain llp_stop_postgres onto the EXIT trap, keeping whatever trap is already set.
_llp_pg_register_trap() {
    local existing
    existing=$(trap -p EXIT)
    case "$existing" in
        *llp_stop_postgres*) return 0 ;;
    esac
    if [ -n "$existing" ]; then
        # `trap -p` prints: trap -- 'command' EXIT, quoted so that eval reads it back.
        eval "set -- $existing"
        trap "llp_stop_postgres; $3" EXIT
    else
        trap 'llp_stop_postgres' EXIT
    fi
}

llp_start_postgres() {
    if _llp_pg_running; then
        export LLP_TEST_POSTGRES_URL="postgresql://llp:llp@127.0.0.1:${LLP_PG_PORT}/llp"
        _llp_pg_say "already running on 127.0.0.1:${LLP_PG_PORT} (${LLP_PG_DIR})"
        return 0
    fi
    if [ -n "${LLP_PG_DIR:-}" ] && [ -d "${LLP_PG_DIR}" ]; then
        rm -rf "$LLP_PG_DIR"  # a stale directory from a server that is gone
    fi
    local bindir
    bindir=$(_llp_pg_bindir) || { _llp_pg_install && bindir=$(_llp_pg_bindir); } || {
        _llp_pg_say "could not find or install initdb/pg_ctl"
        return 1
    }
    export LLP_PG_BIN="$bindir"

    if [ "$(id -u)" -eq 0 ]; then
        export LLP_PG_OWNER=postgres
        if ! id "$LLP_PG_OWNER" >/dev/null 2>&1; then
            useradd --system --no-create-home --shell /usr/sbin/nologin "$LLP_PG_OWNER" || return 1
        fi
    else
        LLP_PG_OWNER=$(id -un)
        export LLP_PG_OWNER
    fi

    local port=${LLP_PG_PORT:-55432} tries=0
    while _llp_pg_port_busy "$port"; do
        tries=$((tries + 1))
        if [ "$tries" -ge 50 ]; then
            _llp_pg_say "no free port from ${LLP_PG_PORT:-55432} on"
            return 1
        fi
        port=$((port + 1))
    done
    export LLP_PG_PORT="$port"

    LLP_PG_DIR=$(mktemp -d "${TMPDIR:-/tmp}/llp-postgres.XXXXXX") || return 1
    export LLP_PG_DIR
    chmod 700 "$LLP_PG_DIR"
    [ "$(id -u)" -eq 0 ] && chown "$LLP_PG_OWNER" "$LLP_PG_DIR"

    _llp_pg_say "initdb in $LLP_PG_DIR (owner $LLP_PG_OWNER, $bindir)"
    _llp_pg_as_owner "$bindir/initdb" -D "$LLP_PG_DIR/data" -U postgres -E UTF8 --no-locale \
        --auth-local=trust --auth-host=scram-sha-256 --no-sync >"$LLP_PG_DIR/initdb.log" 2>&1 || {
        cat "$LLP_PG_DIR/initdb.log" >&2
        return 1
    }
    _llp_pg_as_owner "$bindir/pg_ctl" -D "$LLP_PG_DIR/data" -l "$LLP_PG_DIR/postgres.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$LLP_PG_DIR -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=100" \
        start >/dev/null || {
        cat "$LLP_PG_DIR/postgres.log" >&2
        return 1
    }
    _llp_pg_register_trap

    local waited=0
    until _llp_pg_as_owner "$bindir/pg_isready" -q -h 127.0.0.1 -p "$port"; do
        waited=$((waited + 1))
        if [ "$waited" -ge 60 ]; then
            _llp_pg_say "server did not accept connections within 30 s"
            cat "$LLP_PG_DIR/postgres.log" >&2
            return 1
        fi
        sleep 0.5
    done

    _llp_pg_as_owner "$bindir/psql" -q -X -v ON_ERROR_STOP=1 -h "$LLP_PG_DIR" -p "$port" \
        -U postgres -d postgres >/dev/null <<'SQL' || return 1
CREATE ROLE llp LOGIN PASSWORD 'llp' CREATEDB;
CREATE DATABASE llp OWNER llp;
SQL
    export LLP_TEST_POSTGRES_URL="postgresql://llp:llp@127.0.0.1:${port}/llp"
    _llp_pg_say "running: LLP_TEST_POSTGRES_URL=$LLP_TEST_POSTGRES_URL"
}

llp_stop_postgres() {
    if [ -z "${LLP_PG_DIR:-}" ]; then
        return 0
    fi
    if [ -n "${LLP_PG_BIN:-}" ] && [ -d "$LLP_PG_DIR/data" ]; then
        _llp_pg_as_owner "$LLP_PG_BIN/pg_ctl" -D "$LLP_PG_DIR/data" -m fast -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$LLP_PG_DIR"
    _llp_pg_say "stopped and removed $LLP_PG_DIR"
    unset LLP_PG_DIR LLP_TEST_POSTGRES_URL
    return 0
}

llp_start_postgres
