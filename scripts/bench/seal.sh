#!/usr/bin/env bash
# Sealed archives (age, issue #22), same run, same staged tree (2,000 small
# files and two large ones):
#  1. reel-pack and reel-write with an [[archive_key]] (the archive sealed
#     into the cache, then written to a virtual tape) against
#     `tar -cf - | age -r R > FILE` (target: ratio <= 0.7);
#  2. reel-write's throughput for the sealed archive against the same
#     archive in the clear (target >= 0.9).
# Every timing ends with its output on disk (`sync`).
#   Usage: scripts/bench/seal.sh [ROUNDS] [LARGE_SIZE]   (data in $BENCH_DIR)
set -euo pipefail
rounds="${1:-3}"
large="${2:-512M}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-seal}"
for tool in age age-keygen bc tar; do command -v "$tool" >/dev/null || { echo "seal.sh: needs $tool (scripts/install-deps)" >&2; exit 69; }; done
bin="$repo/target/release"
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
if [ ! -f "$work/ready-$large" ]; then
  rm -rf "$work"; mkdir -p "$work"
  "$bin/examples/gendata" --out "$work/src" --profile small --files 2000 --seed 7 --large-count 2 --large-size "$large"
  age-keygen -o "$work/host.age" 2>/dev/null; chmod 600 "$work/host.age"
  touch "$work/ready-$large"
fi
recipient="$(age-keygen -y "$work/host.age")"
# One config sealed, one clear; the same staged item for both.
conf() {
  bench_config "$work" "$work/src"
  cat <<TOML

[pack]
archive_size = "8G"

[[drive]]
name = "d"
device = "virtual:$work/lib"
capacity = "64G"
block_size = "256K"
buffer = "1G"
TOML
  if [ "$1" = sealed ]; then
    printf '\n[[archive_key]]\nname = "b"\nrecipients = ["%s"]\nidentity = "%s"\nstreams = ["bench"]\n' "$recipient" "$work/host.age"
  fi
}
conf sealed >"$work/sealed.toml"
conf clear >"$work/clear.toml"
rm -rf "$work/var"
"$bin/reel-scan" --config "$work/clear.toml" -q --out - |
  "$bin/reel-stage" --config "$work/clear.toml" -q --in - --out - >"$work/staged.jsonl"
staged=$(echo "$work"/var/cache/staged/bench/*/); staged="${staged%/}"
find "$staged" -type f -exec cat {} + >/dev/null

shell=(); reel=(); wsealed=(); wclear=()
for i in $(seq "$rounds"); do
  rm -f "$work/tar.age"; sync
  t=$(now); tar -cf - -C "$staged" . | age -r "$recipient" >"$work/tar.age"; sync; shell+=("$(since "$t")")
  rm -f "$work/tar.age"
  for kind in sealed clear; do
    rm -rf "$work/lib" "$work/var/cache/archives" "$work/var/spool/packed" "$work/var/spool/written" "$work/var/catalog"; sync
    "$bin/reel" --config "$work/$kind.toml" -q mt label "B${i}L9"
    t=$(now)
    "$bin/reel-pack" --config "$work/$kind.toml" -q --in - <"$work/staged.jsonl"
    sync; tp=$(since "$t")
    t=$(now); "$bin/reel-write" --config "$work/$kind.toml" -q; sync; tw=$(since "$t")
    if [ "$kind" = sealed ]; then
      reel+=("$(echo "$tp + $tw" | bc -l)"); wsealed+=("$tw")
      size=$(du -sb "$work/lib/tapes" | cut -f1)
    else
      wclear+=("$tw")
    fi
  done
  printf 'round %d: tar | age %.2fs; reel-pack + reel-write sealed %.2fs (write %.2fs); write clear %.2fs\n' \
    "$i" "${shell[-1]}" "${reel[-1]}" "${wsealed[-1]}" "${wclear[-1]}"
done
rm -rf "$work/lib" "$work/var/cache/archives"
ms=$(median "${shell[@]}"); mr=$(median "${reel[@]}"); mws=$(median "${wsealed[@]}"); mwc=$(median "${wclear[@]}")
printf 'sealed tape %s bytes; median: tar | age %.2fs, reel-pack + reel-write %.2fs: ratio %.2f (target <= 0.7)\n' \
  "$size" "$ms" "$mr" "$(echo "$mr / $ms" | bc -l)"
printf 'reel-write throughput, sealed against clear: %.2f (target >= 0.9; %.2fs against %.2fs)\n' \
  "$(echo "$mwc / $mws" | bc -l)" "$mws" "$mwc"
