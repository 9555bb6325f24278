#!/usr/bin/env bash
# reel-verify against `openssl dgst -sha256` of the same bytes, same run:
# a 4 GiB archive (four 1 GiB files and a few hundred small ones) written to
# a virtual tape on tmpfs, read back and re-hashed member by member by
# reel-verify; openssl hashes the same tape file, the SHA-256 speed limit of
# this CPU. Prints both times and the ratio (target <= 1.2).
#   Usage: scripts/bench/verify.sh [ROUNDS]
set -euo pipefail
rounds="${1:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
for tool in openssl bc; do command -v "$tool" >/dev/null || { echo "verify.sh: needs $tool" >&2; exit 69; }; done
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
work="${BENCH_SHM:-/dev/shm/reel-bench-verify}"
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
"$bin/examples/gendata" --out "$work/src" --profile small --files 300 --seed 5 --large-count 4 --large-size 1G > /dev/null
{
  bench_config "$work" "$work/src"
  cat <<TOML

[pack]
archive_size = "8G"

[[drive]]
name = "d"
device = "virtual:$work/lib"
capacity = "64G"
buffer = "256M"
TOML
} > "$work/pipeline.toml"
cfg=(--config "$work/pipeline.toml" -q)
"$bin/reel" "${cfg[@]}" mt label BENCH1L9
"$bin/reel-scan" "${cfg[@]}"
"$bin/reel-stage" "${cfg[@]}"
rm -rf "$work/src"                      # room on tmpfs: the staged copies are enough
"$bin/reel-pack" "${cfg[@]}"
"$bin/reel-write" "${cfg[@]}"
rm -rf "$work/var/cache"                # only the tape is read from now on
item=$(ls "$work/var/spool/written/")
cp "$work/var/spool/written/$item" "$work/written.jsonl"
tape="$work/lib/tapes/V00001L9/000001"
size=$(stat -c %s "$tape")
ours=(); theirs=()
for i in $(seq "$rounds"); do
  cp "$work/written.jsonl" "$work/var/spool/written/$item"
  t=$(now); "$bin/reel-verify" "${cfg[@]}"; ours+=("$(since "$t")")
  t=$(now); openssl dgst -sha256 "$tape" > /dev/null; theirs+=("$(since "$t")")
  printf 'round %d: reel-verify %.2fs, openssl dgst -sha256 %.2fs\n' "$i" "${ours[-1]}" "${theirs[-1]}"
done
mo=$(median "${ours[@]}"); mt=$(median "${theirs[@]}")
printf 'archive %s bytes; median: reel-verify %.2fs (%.0f MB/s), openssl %.2fs (%.0f MB/s): ratio %.2f (target <= 1.2)\n' \
  "$size" "$mo" "$(echo "$size / $mo / 1000000" | bc -l)" "$mt" "$(echo "$size / $mt / 1000000" | bc -l)" "$(echo "$mo / $mt" | bc -l)"
