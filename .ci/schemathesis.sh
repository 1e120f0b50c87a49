#!/usr/bin/env bash
# OpenAPI-driven fuzz of the running server (issue 8, docs/security.md "Fuzzing"):
# starts `tfr serve` on 127.0.0.1 with a fresh data directory, runs schemathesis over every
# operation of /openapi.json with a bounded number of examples, and fails on any 5xx or any
# response that does not match the document (status, content type, body schema).
#
#   bash .ci/schemathesis.sh                 # uses $CARGO_TARGET_DIR/{release,debug}/tfr
#   TFR_BIN=path/to/tfr bash .ci/schemathesis.sh
#   ST_MAX_EXAMPLES=200 ST_SEED=7 bash .ci/schemathesis.sh   # a longer run, a given seed
#   bash .ci/schemathesis.sh --report har   # extra arguments go to `schemathesis run`
#   ST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/empty_db bash .ci/schemathesis.sh
#                                            # the PostgreSQL store (an empty database)
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION="${SCHEMATHESIS_VERSION:-4.32.5}"
MAX_EXAMPLES="${ST_MAX_EXAMPLES:-100}"

# The configuration and hooks are written for schemathesis 4.
case "$(schemathesis --version 2>/dev/null || true)" in
*"version 4."*) ;;
*)
    echo "installing schemathesis $SCHEMATHESIS_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
    ;;
esac

target="${CARGO_TARGET_DIR:-target}"
bin="${TFR_BIN:-}"
if [ -z "$bin" ]; then
    for candidate in "$target/release/tfr" "$target/debug/tfr"; do
        if [ -x "$candidate" ] && { [ -z "$bin" ] || [ "$candidate" -nt "$bin" ]; }; then
            bin="$candidate"
        fi
    done
fi
if [ -z "$bin" ]; then
    cargo build --quiet -p tfr
    bin="$target/debug/tfr"
fi

work="$(mktemp -d)"
server_pid=""
cleanup() {
    if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
        kill -TERM "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# A free port on loopback, picked by the kernel.
port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
base="http://127.0.0.1:$port"

# Secrets for the GitHub and GitLab webhooks, so that the hooks can authenticate deliveries.
export TFR_GITHUB_SECRET="schemathesis-github-$RANDOM$RANDOM"
export TFR_GITLAB_TOKEN="schemathesis-gitlab-$RANDOM$RANDOM"
export TFR_LOG="${TFR_LOG:-warn}"

# The store: a fresh SQLite data directory, or the (empty) PostgreSQL database given.
store=(--data "$work/data")
if [ -n "${ST_DATABASE_URL:-}" ]; then
    store=(--database "$ST_DATABASE_URL")
fi

# With tokens (issue 8), the run acts as an admin, so that every operation is reachable;
# the authorization matrix is tested elsewhere (crates/tfr-server/tests).
auth=()
if "$bin" token create --help >/dev/null 2>&1; then
    token="$("$bin" token create --name "schemathesis-$port" --scope admin "${store[@]}")"
    auth=(--header "Authorization: Bearer $token")
fi

echo "starting $bin serve on $base"
"$bin" serve --listen "127.0.0.1:$port" "${store[@]}" >"$work/server.log" 2>&1 &
server_pid=$!

ready=""
for _ in $(seq 1 100); do
    if ! kill -0 "$server_pid" 2>/dev/null; then
        break
    fi
    if python3 -c "import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)" "$base/readyz" 2>/dev/null; then
        ready=yes
        break
    fi
    sleep 0.1
done
if [ -z "$ready" ]; then
    echo "the server did not become ready; its log:" >&2
    cat "$work/server.log" >&2
    exit 1
fi

status=0
SCHEMATHESIS_HOOKS=schemathesis_hooks PYTHONPATH=".ci${PYTHONPATH:+:$PYTHONPATH}" \
    timeout 600 schemathesis --no-color --config-file .ci/schemathesis.toml run "$base/openapi.json" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance \
    --max-examples "$MAX_EXAMPLES" \
    --seed "${ST_SEED:-1}" \
    --suppress-health-check all \
    --max-failures 50 \
    "${auth[@]}" "$@" 2>&1 | tee "$work/schemathesis.log" ||
    status=$?

if ! kill -0 "$server_pid" 2>/dev/null; then
    echo "the server died during the run; its log:" >&2
    cat "$work/server.log" >&2
    status=1
elif grep -Eq 'panicked|ERROR' "$work/server.log"; then
    echo "the server logged errors during the run:" >&2
    grep -E -A3 'panicked|ERROR' "$work/server.log" | head -50 >&2
    status=1
fi
if [ "$status" = 0 ]; then
    # The closing line CI reads: the test cases run (schemathesis prints "N generated, N passed").
    passed="$(grep -Eo '[0-9]+ generated, [0-9]+ passed' "$work/schemathesis.log" | grep -Eo '[0-9]+ passed$' | tail -n 1)"
    echo "schemathesis: ${passed:-0 passed}, 0 failed"
fi
exit "$status"
