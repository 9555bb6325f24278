#!/usr/bin/env bash
# CPU per GiB on the write path (issue #25): an archive on the cache disk
# written to a virtual drive on the same disk by reel-write (a packed item,
# as the pipeline writes it: ring, SHA-256 of the stream, tape file), against
# `dd bs=256k conv=fsync`, `dd iflag=direct bs=256k conv=fsync` and
# `mbuffer` (then `sync FILE`) copying the same archive to a file there, in
# one run, the page cache dropped before each copy: every copy ends with
# its bytes on disk, as reel-write's does. Prints, per tool, the median wall time, MB/s and CPU-seconds
# (user + system) per GiB, and reel-write's ratios.
#   Usage: scripts/bench/writecpu.sh [ROUNDS] [SIZE_MiB]
# The work directory is $BENCH_DIR (default /var/tmp/reel-bench-writecpu).
set -euo pipefail
rounds="${1:-3}"
mib="${2:-2048}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
work="${BENCH_DIR:-/var/tmp/reel-bench-writecpu}"
for tool in mbuffer dd /usr/bin/time bc; do command -v "$tool" >/dev/null || { echo "writecpu.sh: needs $tool (scripts/install-deps)" >&2; exit 69; }; done
cargo build --quiet --release --bins --manifest-path "$repo/Cargo.toml"
rm -rf "$work"; mkdir -p "$work/src"
trap 'rm -rf "$work"' EXIT
head -c "$((mib << 20))" /dev/urandom > "$work/src/data.bin"
{
  bench_config "$work" "$work/src"
  cat <<TOML

[pack]
archive_size = "64G"

[[drive]]
name = "d"
device = "virtual:$work/lib"
capacity = "64G"
block_size = "256K"
buffer = "1G"
TOML
} > "$work/pipeline.toml"
# The same without the archive's own SHA-256 ([write] archive_sha256).
{ cat "$work/pipeline.toml"; printf '\n[write]\narchive_sha256 = false\n'; } > "$work/nohash.toml"
r() { "$bin/$1" --config "$work/pipeline.toml" -q "${@:2}"; }
r reel-scan; r reel-stage; r reel-pack
archive=$(ls "$work"/var/cache/archives/*)
cp -a "$work/var/spool/packed" "$work/packed.saved"
drop() { sync; echo 1 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
# time_of LABEL CMD…: append "wall user sys" for LABEL.
declare -A runs
time_of() {
  local label=$1; shift
  drop
  /usr/bin/time -f '%e %U %S' -o "$work/time" "$@"
  runs[$label]+="$(tail -1 "$work/time");"
}
fresh_tape() {
  rm -rf "$work/lib" "$work/var/spool/packed" "$work/var/spool/written" "$work/var/catalog" "$work/var/log"
  cp -a "$work/packed.saved" "$work/var/spool/packed"
  r reel mt label "BENCH${1}L9"
}
for i in $(seq "$rounds"); do
  fresh_tape "$i"
  time_of reel-write "$bin/reel-write" --config "$work/pipeline.toml" -q
  fresh_tape "$i"
  time_of reel-write-nohash "$bin/reel-write" --config "$work/nohash.toml" -q
  # Each copy ends with its data on disk, as reel-write's does (the
  # virtual drive syncs a tape file at every filemark): dd conv=fsync, and
  # mbuffer followed by a sync of its file.
  time_of dd dd if="$archive" of="$work/out" bs=256k conv=fsync status=none; rm -f "$work/out"
  time_of dd-direct dd if="$archive" of="$work/out" bs=256k iflag=direct conv=fsync status=none; rm -f "$work/out"
  time_of mbuffer sh -c "mbuffer -q -s 256k -m 1G -i '$archive' -o '$work/out' && sync '$work/out'"; rm -f "$work/out"
  echo "round $i done" >&2
done
gib=$(echo "$(stat -c %s "$archive") / 1073741824" | bc -l)
declare -A cpu wall
for t in reel-write reel-write-nohash dd dd-direct mbuffer; do
  walls=(); cpus=()
  IFS=';' read -ra rs <<< "${runs[$t]}"
  for x in "${rs[@]}"; do
    read -r w u s <<< "$x"
    walls+=("$w"); cpus+=("$(echo "$u + $s" | bc -l)")
  done
  wall[$t]=$(median "${walls[@]}"); cpu[$t]=$(median "${cpus[@]}")
  printf '%-17s median %.2fs wall, %.0f MB/s, %.2f CPU-s per GiB\n' "$t" "${wall[$t]}" \
    "$(echo "$gib * 1073.741824 / ${wall[$t]}" | bc -l)" "$(echo "${cpu[$t]} / $gib" | bc -l)"
done
printf 'archive %.2f GiB, rounds %d, cores %d\n' "$gib" "$rounds" "$(nproc)"
for w in reel-write reel-write-nohash; do
  printf '%s CPU per GiB / dd: %.2f (target <= 0.5)\n' "$w" "$(echo "${cpu[$w]} / ${cpu[dd]}" | bc -l)"
  for t in dd dd-direct mbuffer; do
    printf '  throughput %s / %s: %.2f (target >= 1.0)\n' "$w" "$t" "$(echo "${wall[$t]} / ${wall[$w]}" | bc -l)"
  done
done
