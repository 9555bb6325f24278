#!/usr/bin/env bash
# reel-scan against `find -printf '%s %T@ %p\n'` on a tree of N small files
# (default 1,000,000) that the catalog already holds, warm page cache, in one
# run. Prints each timing, the median ratio reel-scan / find and reel-scan's
# peak RSS.  Usage: scripts/bench/scan.sh [N] [ROUNDS]
# The tree and catalog are kept in $BENCH_DIR (default /var/tmp/reel-bench-scan)
# and reused by later runs with the same N.
set -euo pipefail
n="${1:-1000000}"
rounds="${2:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-scan}"
bin="$repo/target/release"
command -v /usr/bin/time >/dev/null || { echo "scan.sh: needs GNU time (apt-get install time)" >&2; exit 69; }
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"

if [ "$(cat "$work/files" 2>/dev/null)" != "$n" ]; then
  rm -rf "$work"
  mkdir -p "$work"
  echo "scan.sh: generating $n files in $work/src" >&2
  "$bin/examples/gendata" --out "$work/src" --profile small --files "$n" --max-file-size 1K --seed 42
  bench_config "$work" "$work/src" > "$work/pipeline.toml"
  echo "scan.sh: recording the tree in the catalog" >&2
  "$bin/reel-scan" --config "$work/pipeline.toml" -q --out - | "$bin/examples/seedcatalog" --catalog "$work/var/catalog"
  "$bin/reel" --config "$work/pipeline.toml" catalog rebuild
  echo "$n" > "$work/files"
fi

# Warm the page cache, dentries and inodes for both.
find "$work/src" -printf '%s %T@ %p\n' > /dev/null
"$bin/reel-scan" --config "$work/pipeline.toml" -q

finds=(); scans=(); rss=0
for i in $(seq "$rounds"); do
  t0=$(now); find "$work/src" -printf '%s %T@ %p\n' > /dev/null; t1=$(now)
  finds+=("$(echo "$t1 - $t0" | bc -l)")
  t0=$(now)
  /usr/bin/time -f '%M' -o "$work/rss" "$bin/reel-scan" --config "$work/pipeline.toml" 2> "$work/scan.log"
  t1=$(now)
  scans+=("$(echo "$t1 - $t0" | bc -l)")
  kb=$(tail -1 "$work/rss"); [ "$kb" -gt "$rss" ] && rss=$kb
  printf 'round %d: find %.3fs  reel-scan %.3fs\n' "$i" "${finds[-1]}" "${scans[-1]}"
done
mf=$(median "${finds[@]}"); ms=$(median "${scans[@]}")
grep -o 'bench: .*' "$work/scan.log" | tail -1
printf 'files %d, rounds %d, cores %d\n' "$n" "$rounds" "$(nproc)"
printf 'median: find %.3fs, reel-scan %.3fs, ratio reel-scan/find %.2f (target <= 1.0)\n' "$mf" "$ms" "$(echo "$ms / $mf" | bc -l)"
printf 'reel-scan peak RSS %.1f MB (target <= 200 MB)\n' "$(echo "$rss / 1024" | bc -l)"
