#!/usr/bin/env bash
# The catalog at scale (issue #25): a synthetic catalog of N members
# (default 50,000,000; scripts/bench/fakecatalog.rs), its index rebuilt,
# then `reel find` of one path, of a glob within one directory, and of a
# glob with no literal start (every name scanned). Prints the wall time and
# peak RSS of each. Targets: each find under 1 s, peak memory <= 200 MB.
#   Usage: scripts/bench/catalog-scale.sh [N]
# The catalog is kept in $BENCH_DIR (default /var/tmp/reel-bench-catalog)
# and reused by later runs with the same N (50 M members: about 14 GB).
set -euo pipefail
n="${1:-50000000}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-catalog}"
bin="$repo/target/release"
command -v /usr/bin/time >/dev/null || { echo "catalog-scale.sh: needs GNU time (apt-get install time)" >&2; exit 69; }
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
measure() { # LABEL CMD…: wall and peak RSS
  local label=$1; shift
  /usr/bin/time -f '%e %M' -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r wall kb < <(tail -1 "$work/time")
  printf '%-34s %7.2f s  %7.1f MB RSS  %s line(s)\n' "$label" "$wall" "$(echo "$kb / 1024" | bc -l)" "$(wc -l < "$work/out")"
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
"${reel[@]}" find "$path" > /dev/null  # warm the page cache
measure "find one path" "${reel[@]}" find "$path"
measure "find a glob in one directory" "${reel[@]}" find "$dir/*7.dat"
measure "find a glob with no literal start" "${reel[@]}" find '**/f*42424.dat'
printf 'members %d, journal %.1f GB, cores %d\n' "$n" "$(echo "$(du -sk "$work/var/catalog/tapes" | cut -f1) / 1048576" | bc -l)" "$(nproc)"
