#!/usr/bin/env bash
# `reel catalog export --sqlite` of a catalog of N members (default
# 1,000,000: the scan benchmark's tree, recorded in its catalog), fresh and
# then incremental with nothing new. Prints the time and peak RSS of each,
# and for scale the time sqlite3's own `.import` takes to load the same
# number of rows from a CSV file (rows only: no JSON to parse, no
# indexes).  Usage: scripts/bench/export.sh [N]
set -euo pipefail
n="${1:-1000000}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-scan}"
bin="$repo/target/release"
command -v /usr/bin/time >/dev/null || { echo "export.sh: needs GNU time (apt-get install time)" >&2; exit 69; }
command -v sqlite3 >/dev/null || { echo "export.sh: needs sqlite3 (apt-get install sqlite3)" >&2; exit 69; }
if [ "$(cat "$work/files" 2>/dev/null)" != "$n" ]; then
  BENCH_DIR="$work" "$repo/scripts/bench/scan.sh" "$n" 1
fi
cargo build --quiet --release --bins --manifest-path "$repo/Cargo.toml"
members=$(cat "$work"/var/catalog/tapes/*.jsonl | wc -l)
db="$work/catalog.db"
rm -f "$db" "$db-wal" "$db-shm"
t0=$(now)
/usr/bin/time -f '%M' -o "$work/rss" "$bin/reel" --config "$work/pipeline.toml" catalog export --sqlite "$db"
t1=$(now)
fresh=$(echo "$t1 - $t0" | bc -l); rss=$(tail -1 "$work/rss")
t0=$(now)
/usr/bin/time -f '%M' -o "$work/rss2" "$bin/reel" --config "$work/pipeline.toml" catalog export --sqlite "$db"
t1=$(now)
again=$(echo "$t1 - $t0" | bc -l); rss2=$(tail -1 "$work/rss2")
rows=$(sqlite3 "$db" "SELECT COUNT(*) FROM members")
size=$(du -k "$db" | cut -f1)
# The floor: the same number of rows of the same width through sqlite3's
# CSV import, into a table without indexes.
sqlite3 -csv "$db" "SELECT tape, file, block, archive, stream, path_text, type, size, mtime_ns, mtime, mode, uid, gid, owner, \"group\", sha256, taken_ns, taken, verified FROM members" > "$work/members.csv"
rm -f "$work/import.db"
sqlite3 "$work/import.db" "CREATE TABLE members (tape, file, block, archive, stream, path_text, type, size, mtime_ns, mtime, mode, uid, gid, owner, grp, sha256, taken_ns, taken, verified)"
t0=$(now)
sqlite3 "$work/import.db" ".import --csv $work/members.csv members"
t1=$(now)
import=$(echo "$t1 - $t0" | bc -l)
rm -f "$work/import.db" "$work/members.csv"
printf 'journal lines %d, members exported %d, database %.0f MB, cores %d\n' "$members" "$rows" "$(echo "$size / 1024" | bc -l)" "$(nproc)"
printf 'fresh export:       %.2fs, peak RSS %.1f MB\n' "$fresh" "$(echo "$rss / 1024" | bc -l)"
printf 'incremental (none): %.2fs, peak RSS %.1f MB\n' "$again" "$(echo "$rss2 / 1024" | bc -l)"
printf 'sqlite3 .import of the same rows from CSV (no indexes): %.2fs; ratio export/import %.2f\n' "$import" "$(echo "$fresh / $import" | bc -l)"
