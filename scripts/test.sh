#!/usr/bin/env bash
# Runs every test project and prints one closing line "N passed, N failed, N skipped".
# Long property and soak runs: IMIKELGO_LONG=1 scripts/test.sh
set -uo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
"$root/scripts/setup.sh" || { echo "setup failed"; echo "0 passed, 1 failed"; exit 1; }
# Debian's Chromium for the teacher app's browser tests (Playwright drives it; nothing is downloaded).
"$root/scripts/setup-chromium.sh" || { echo "Chromium setup failed"; echo "0 passed, 1 failed"; exit 1; }
# A throwaway PostgreSQL for the Marten stores (installed by apt when missing), stopped on exit.
"$root/scripts/pg-start.sh" >/dev/null || { echo "PostgreSQL failed to start"; echo "0 passed, 1 failed"; exit 1; }
export IMIKELGO_POSTGRES="$(cat "$root/.cache/postgres/connection")"
trap '"$root/scripts/pg-stop.sh" >/dev/null 2>&1' EXIT

results="$root/.cache/test-results"
rm -rf "$results"; mkdir -p "$results"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

build_ok=1
missing=0
dotnet build iMikelGo.sln -c Release -nologo -v q || build_ok=0

if [ "$build_ok" -eq 1 ]; then
  for project in tests/*/*.Tests.csproj; do
    name=$(basename "$project" .csproj)
    echo "== $name"
    dotnet test "$project" -c Release --no-build -nologo \
      --logger "trx;LogFileName=$name.trx" --logger "console;verbosity=minimal" --results-directory "$results"
    if [ ! -f "$results/$name.trx" ]; then
      echo "$name produced no test results (the test host crashed?)"; missing=$((missing + 1))
    fi
  done
fi

passed=0; failed=0; skipped=0
for trx in "$results"/*.trx; do
  [ -f "$trx" ] || continue
  counters=$(grep -o '<Counters [^>]*>' "$trx" | head -1)
  get() { echo "$counters" | sed -n "s/.* $1=\"\([0-9]*\)\".*/\1/p"; }
  p=$(get passed); f=$(get failed); e=$(get error); n=$(get notExecuted)
  passed=$((passed + ${p:-0})); failed=$((failed + ${f:-0} + ${e:-0})); skipped=$((skipped + ${n:-0}))
done
[ "$build_ok" -eq 1 ] || failed=$((failed + 1))
failed=$((failed + missing))
if [ $((passed + failed)) -eq 0 ]; then
  echo "no test was executed"; failed=1
fi
echo "$passed passed, $failed failed, $skipped skipped"
[ "$failed" -eq 0 ]
