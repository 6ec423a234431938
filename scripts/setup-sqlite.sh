#!/usr/bin/env bash
# Builds the encrypted SQLite library used by the device vault (SQLite3 Multiple Ciphers) from the
# amalgamation shipped in the npm registry package better-sqlite3-multiple-ciphers, into .cache/native/.
# Idempotent and cached: when the library exists and passes a quick export check, nothing is rebuilt.
# No C sources are ever written inside the work tree except under the ignored .cache/ folder.
#
# Compile flags (see docs/vault.md):
#   SQLITE_TEMP_STORE=3   temporary tables, sorter spills and VACUUM copies always live in memory, whatever
#                         PRAGMA temp_store says (the vault also sets temp_store=MEMORY on every connection).
#   SQLITE_SECURE_DELETE  freed pages are overwritten.
#   SQLITE_THREADSAFE=1   serialized mode, required by Microsoft.Data.Sqlite.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
pkg="better-sqlite3-multiple-ciphers"
version="${IMIKELGO_SQLITE3MC_NPM_VERSION:-12.11.1}"
out_dir="$root/.cache/native"
lib="$out_dir/libsqlite3mc.so"
stamp="$out_dir/libsqlite3mc.version"

check_lib() {
  # A quick check: the file is a shared object exporting both the SQLite API and the SQLite3MC extension.
  [ -s "$lib" ] || return 1
  [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$pkg@$version" ] || return 1
  if command -v nm >/dev/null 2>&1; then
    local syms
    syms="$(nm -D --defined-only "$lib" 2>/dev/null)" || return 1
    grep -q ' sqlite3_key_v2$' <<<"$syms" || return 1
    grep -q ' sqlite3mc_version$' <<<"$syms" || return 1
  fi
  return 0
}

if check_lib; then
  echo "setup-sqlite: $lib is present ($pkg@$version), nothing to do"
  exit 0
fi

for tool in npm gcc tar; do
  command -v "$tool" >/dev/null 2>&1 || { echo "setup-sqlite: '$tool' is missing (scripts/setup.sh installs it)" >&2; exit 1; }
done

mkdir -p "$out_dir"
work="$(mktemp -d "${TMPDIR:-/tmp}/imikelgo-sqlite3mc.XXXXXX")"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack "$pkg@$version" --silent >/dev/null 2>"$work/npm.log") || {
  cat "$work/npm.log" >&2; echo "setup-sqlite: npm pack $pkg@$version failed" >&2; exit 1; }
tgz="$(ls "$work"/*.tgz | head -1)"
tar -xzf "$tgz" -C "$work" package/deps/sqlite3/sqlite3.c package/deps/sqlite3/sqlite3.h
src="$work/package/deps/sqlite3"

gcc -O2 -fPIC -shared \
  -DSQLITE_ENABLE_FTS5 -DSQLITE_ENABLE_JSON1 -DSQLITE_ENABLE_MATH_FUNCTIONS \
  -DSQLITE_THREADSAFE=1 -DSQLITE_TEMP_STORE=3 -DSQLITE_SECURE_DELETE=1 \
  -DSQLITE_DQS=0 -DSQLITE_DEFAULT_FOREIGN_KEYS=1 \
  -I"$src" "$src/sqlite3.c" -o "$work/libsqlite3mc.so" -lpthread -ldl -lm

# Atomic install: a half-written library is never left at the final path.
mv -f "$work/libsqlite3mc.so" "$lib.tmp"
mv -f "$lib.tmp" "$lib"
echo "$pkg@$version" > "$stamp"
check_lib || { echo "setup-sqlite: built library failed the export check" >&2; exit 1; }
echo "setup-sqlite: built $lib from npm $pkg@$version (SQLite3 Multiple Ciphers, temp store in memory)"
