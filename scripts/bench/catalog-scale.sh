#!/usr/bin/env bash
# The catalog at scale (issue #25): a synthetic catalog of N members
# (default 50,000,000; scripts/bench/fakecatalog.rs), its index rebuilt,
# then `reel find` of one path, of a glob within one directory, and of a
# glob with no literal start (every name scanned), and reel-scan of a tree
# of the first million members (1,000 directories of 1,000 sparse files
# whose size and mtime the catalog holds: every file already on tape)
# against `find -printf '%s %T@ %p\n'` in the same run, warm page cache,
# ROUNDS rounds, medians. Prints the wall time and peak RSS of each.
# Targets: each find under 1 s, reel-scan <= 1.0 x find, peak memory
# <= 200 MB.
#   Usage: scripts/bench/catalog-scale.sh [N] [ROUNDS]
# The catalog is kept in $BENCH_DIR (default /var/tmp/reel-bench-catalog)
# and reused by later runs with the same N (50 M members: about 14 GB).
set -euo pipefail
n="${1:-50000000}"
rounds="${2:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-catalog}"
bin="$repo/target/release"
command -v /usr/bin/time >/dev/null || { echo "catalog-scale.sh: needs GNU time (apt-get install time)" >&2; exit 69; }
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
measure() { # LABEL CMD…: wall, CPU (user + system) and peak RSS
  local label=$1; shift
  /usr/bin/time -f '%e %M %U %S' -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r wall kb user sys < <(tail -1 "$work/time")
  printf '%-34s %7.2f s  %5.2f s CPU  %7.1f MB RSS  %s line(s)\n' "$label" "$wall" "$(echo "$user + $sys" | bc -l)" \
    "$(echo "$kb / 1024" | bc -l)" "$(wc -l < "$work/out")"
}
if [ "$(cat "$work/entries" 2>/dev/null)" != "$n" ]; then
  rm -rf "$work"; mkdir -p "$work"
  bench_config "$work" > "$work/pipeline.toml"
  echo "catalog-scale.sh: writing $n members" >&2
  measure "generate the journal" "$bin/examples/fakecatalog" --catalog "$work/var/catalog" --entries "$n"
  measure "reel catalog rebuild" "$bin/reel" --config "$work/pipeline.toml" catalog rebuild
  echo "$n" > "$work/entries"
fi
reel=("$bin/reel" --config "$work/pipeline.toml")
mid=$((n / 2))
path=$(printf 'd%05d/f%09d.dat' $((mid / 1000)) "$mid")
dir=$(printf 'd%05d' $((mid / 1000)))
# Each find run once before it is measured: page cache warm.
for p in "$path" "$dir/*7.dat" '**/f*42424.dat'; do "${reel[@]}" find "$p" > /dev/null; done
measure "find one path" "${reel[@]}" find "$path"
measure "find a glob in one directory" "${reel[@]}" find "$dir/*7.dat"
measure "find a glob with no literal start" "${reel[@]}" find '**/f*42424.dat'
printf 'members %d, journal %.1f GB, cores %d\n' "$n" "$(echo "$(du -sk "$work/var/catalog/tapes" | cut -f1) / 1048576" | bc -l)" "$(nproc)"
files=$((n < 1000000 ? n : 1000000))
if [ "$(cat "$work/tree-files" 2>/dev/null)" != "$files" ]; then
  rm -rf "$work/tree"
  "$bin/examples/fakecatalog" --tree "$work/tree" --entries "$files"
  echo "$files" > "$work/tree-files"
fi
bench_config "$work" "$work/tree" > "$work/scan.toml"
peer=(find "$work/tree" -printf '%s %T@ %p\n')
"${peer[@]}" > /dev/null; "$bin/reel-scan" --config "$work/scan.toml" -q  # warm both
finds=(); scans=(); rss=0
for i in $(seq "$rounds"); do
  measure "find -printf, $files files" "${peer[@]}"; finds+=("$wall")
  measure "reel-scan, $files files" "$bin/reel-scan" --config "$work/scan.toml"; scans+=("$wall")
  [ "$kb" -gt "$rss" ] && rss=$kb
done
grep -o 'bench: .*' "$work/err" | tail -1 || true
# Another VM on the same cores takes reel-scan's second core: say so.
printf 'load average (1, 5, 15 min): %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"
mf=$(median "${finds[@]}"); ms=$(median "${scans[@]}")
printf 'median of %d: find %.2f s, reel-scan %.2f s, ratio reel-scan/find %.2f (target <= 1.0), reel-scan peak RSS %.1f MB\n' \
  "$rounds" "$mf" "$ms" "$(echo "$ms / $mf" | bc -l)" "$(echo "$rss / 1024" | bc -l)"
