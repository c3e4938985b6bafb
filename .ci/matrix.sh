#!/usr/bin/env bash
# Run the matrix modules (MATRIX_MODULES in tests/conftest.py) once per server build of
# .ci/servers.py, each through AIOWORKER_REDIS_SERVER. MATRIX_SERVERS="redis-6.2 ..." picks some;
# extra arguments go to pytest. Every server runs even when one fails; the exit status is 1 if
# any failed. Prints the wall time per server.
set -uo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=.venv/bin/python
read -r -a servers_wanted <<<"${MATRIX_SERVERS:-}"
servers=$("$PY" .ci/servers.py "${servers_wanted[@]}") || exit 1
# Globs in the list (tests/test_lua_*.py) expand here, in the repository root.
read -r -a modules <<<"$("$PY" -c 'from tests.conftest import MATRIX_MODULES; print(" ".join(MATRIX_MODULES))')"
# shellcheck disable=SC2206
modules=(${modules[@]})

summary=()
status=0
while read -r name path; do
    echo "matrix: $name ($("$path" --version))"
    start=$SECONDS
    if AIOWORKER_REDIS_SERVER="$path" "$PY" -m pytest -q -p no:cacheprovider "${modules[@]}" "$@"; then
        result=passed
    else
        result=FAILED
        status=1
    fi
    summary+=("$name: $result in $((SECONDS - start)) s")
done <<<"$servers"

echo "matrix summary:"
printf '  %s\n' "${summary[@]}"
exit $status
