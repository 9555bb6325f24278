#!/usr/bin/env bash
# reel-write --raw against mbuffer and dd, same run: 4 GiB from a file on
# tmpfs to a (virtual) tape on tmpfs, 256 KiB blocks, 1 GiB of buffer.
# Prints each throughput, the ratios and reel-write's peak RSS.
#   Usage: scripts/bench/write.sh [ROUNDS] [SIZE_MiB]
set -euo pipefail
rounds="${1:-3}"
mib="${2:-4096}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
shm="${BENCH_SHM:-/dev/shm/reel-bench-write}"
for tool in mbuffer dd /usr/bin/time bc; do command -v "$tool" >/dev/null || { echo "write.sh: needs $tool (scripts/install-deps)" >&2; exit 69; }; done
cargo build --quiet --release --bins --manifest-path "$repo/Cargo.toml"
rm -rf "$shm"; mkdir -p "$shm"
trap 'rm -rf "$shm"' EXIT
head -c "$((mib << 20))" /dev/urandom > "$shm/input"
{
  bench_config "$shm"
  cat <<TOML

[[drive]]
name = "d"
device = "virtual:$shm/lib"
capacity = "64G"
block_size = "256K"
buffer = "1G"
start_fill = "90%"
TOML
} > "$shm/pipeline.toml"
reel=(); mb=(); dds=(); rss=0
for i in $(seq "$rounds"); do
  rm -rf "$shm/lib" "$shm/var"
  "$bin/reel" --config "$shm/pipeline.toml" -q mt label "BENCH${i}L9"
  t=$(now)
  /usr/bin/time -f '%M' -o "$shm/rss" "$bin/reel-write" --config "$shm/pipeline.toml" -q --raw < "$shm/input"
  reel+=("$(since "$t")")
  kb=$(tail -1 "$shm/rss"); [ "$kb" -gt "$rss" ] && rss=$kb
  rm -rf "$shm/lib"
  t=$(now); mbuffer -q -s 256k -m 1G -P 90 -i "$shm/input" -o "$shm/out"; mb+=("$(since "$t")"); rm -f "$shm/out"
  t=$(now); dd if="$shm/input" of="$shm/out" bs=256k status=none; dds+=("$(since "$t")"); rm -f "$shm/out"
  printf 'round %d: reel-write %.2fs, mbuffer %.2fs, dd %.2fs\n' "$i" "${reel[-1]}" "${mb[-1]}" "${dds[-1]}"
done
mr=$(median "${reel[@]}"); mm=$(median "${mb[@]}"); md=$(median "${dds[@]}")
rate() { echo "$mib / 1.048576 / $1" | bc -l; }
printf 'median MB/s: reel-write %.0f, mbuffer %.0f, dd %.0f\n' "$(rate "$mr")" "$(rate "$mm")" "$(rate "$md")"
printf 'throughput ratio reel-write/mbuffer %.2f, reel-write/dd %.2f (target >= 1.0)\n' "$(echo "$mm / $mr" | bc -l)" "$(echo "$md / $mr" | bc -l)"
printf 'reel-write peak RSS %.0f MB (target <= buffer 1024 MB + 64 MB)\n' "$(echo "$rss / 1024" | bc -l)"
