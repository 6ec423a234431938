#!/usr/bin/env bash
# The main job: the end-to-end QuickStart (samples/QuickStart) — relay, school connector with the real ES-SS-08
# timetable, three teacher devices, sync, conflict, convergence, tamper refusal, wrong-PIN and remote wipe — then
# the short CLI log demo (signed log, verify, replay, one changed byte refused). Exits 0 when all of that happens.
# QUICKSTART_ARGS="--postgres" runs the relay on PostgreSQL/Marten (IMIKELGO_POSTGRES or scripts/pg-start.sh).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1

say() { printf '\n== %s\n' "$*"; }

say "setup (idempotent)"
./scripts/setup.sh

say "building the QuickStart (Release)"
# Own artifacts path: a shared -o folder would mix in other projects' SQLite natives (the vault needs SQLite3MC).
dotnet build samples/QuickStart -c Release -nologo -v q --artifacts-path .cache/quickstart-build >/dev/null
say "QuickStart: the whole system on this machine"
# shellcheck disable=SC2086
dotnet .cache/quickstart-build/bin/QuickStart/release/iMikelGo.QuickStart.dll ${QUICKSTART_ARGS:-}

say "building the imikelgo CLI (Release)"
dotnet build frontends/iMikelGo.Cli -c Release -nologo -v q -o .cache/demo/bin >/dev/null
imikelgo() { dotnet .cache/demo/bin/imikelgo.dll "$@"; }

log=.cache/demo/school.jsonl
say "log demo 1. a school and 3 teacher devices record lessons, syncing through a relay (seed 42)"
imikelgo log demo --seed 42 --replicas 4 --events 2000 --out "$log"

say "log demo 2. verify: every line parsed, hashed, chained and covered by a valid checkpoint signature"
imikelgo log verify "$log"

say "log demo 3. replay: the merged teacher calendar (first lessons), the conflicts and the state digest"
imikelgo log replay "$log" > .cache/demo/replay.txt
sed -n '1,12p' .cache/demo/replay.txt
echo "  …"
grep -A3 '^Conflicts' .cache/demo/replay.txt
echo "  …"
tail -n 1 .cache/demo/replay.txt

say "log demo 4. tamper: change one byte in the middle of line 1000 and verify again (must be refused, exit 3)"
tampered=.cache/demo/school-tampered.jsonl
LC_ALL=C awk 'NR == 1000 { m = int(length($0) / 2); c = substr($0, m, 1); r = (c == "a") ? "b" : "a";
  printf "  (line 1000, byte %d: \"%s\" -> \"%s\")\n", m, c, r > "/dev/stderr"; $0 = substr($0, 1, m - 1) r substr($0, m + 1) } { print }' "$log" > "$tampered"
set +e
imikelgo log verify "$tampered"
code=$?
set -e
if [ "$code" -eq 3 ]; then
  say "the tampered copy was refused (exit 3), as it must be. QuickStart and log demo done."
  exit 0
fi
echo "UNEXPECTED: verify of the tampered log exited $code (expected 3)" >&2
exit 1
