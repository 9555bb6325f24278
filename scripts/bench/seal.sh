#!/usr/bin/env bash
# Sealed archives (age, issue #22), same run, same staged tree (2,000 small
# files and two large ones):
#  1. reel-pack and reel-write with an [[archive_key]] (the archive packed
#     into the cache, then sealed by reel-write on its way to a virtual
#     tape) against
#     `tar -cf - | age -r R > FILE` (target: ratio <= 0.7);
#  0. the sealing rate alone, reel's (SealingReader, examples/sealrate)
#     against the age command's (`age -r R > /dev/null`), one large file
#     from the page cache;
#  2. reel-write's throughput for the sealed archive against the same
#     archive in the clear (target >= 0.9): onto a virtual tape on tmpfs
#     whose speed model is the LTO-9 drive of scripts/bench/pacing.sh
#     (effective rate and backhitches from the model), and, for the
#     write path's own ceiling, onto a virtual tape on the disk unpaced.
# Every timing ends with its output on disk (`sync`).
#   Usage: scripts/bench/seal.sh [ROUNDS] [LARGE_SIZE]   (data in $BENCH_DIR)
set -euo pipefail
rounds="${1:-3}"
large="${2:-512M}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-seal}"
for tool in age age-keygen bc tar python3; do command -v "$tool" >/dev/null || { echo "seal.sh: needs $tool (scripts/install-deps)" >&2; exit 69; }; done
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

# 0. The sealing rate, from the page cache to nowhere.
big=$(find "$work/src" -type f -size +100M | head -1)
cat "$big" >/dev/null
bytes=$(stat -c %s "$big")
rates=(); for i in 1 2 3; do t=$(now); age -r "$recipient" <"$big" >/dev/null; rates+=("$(echo "$bytes / $(since "$t") / 1000000" | bc -l)"); done
mapfile -t ours < <("$bin/examples/sealrate" "$big")
printf 'sealing %s bytes, median of 3: reel %.0f MB/s (on every core), age -r %.0f MB/s\n' \
  "$bytes" "$(median "${ours[@]}")" "$(median "${rates[@]}")"

shell=(); reel=(); wsealed=(); wclear=()
for i in $(seq "$rounds"); do
  rm -f "$work/tar.age"; sync
  t=$(now); tar -cf - -C "$staged" . | age -r "$recipient" >"$work/tar.age"; sync; shell+=("$(since "$t")")
  rm -f "$work/tar.age"
  # The order alternates, so that neither side always follows tar | age.
  order="sealed clear"; [ $((i % 2)) -eq 0 ] && order="clear sealed"
  for kind in $order; do
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

# 2. Paced: the archive written sealed and clear onto a tape on tmpfs that
# models an LTO-9 drive (1 GiB ring, start at 90 %, min_rate 177MB/s).
shm="${BENCH_SHM:-/dev/shm/reel-bench-seal}"
rm -rf "$shm"; mkdir -p "$shm"
trap 'rm -rf "$shm"' EXIT
model="$("$bin/reel-drivesim" --model lto9 --print-params)"
for kind in sealed clear; do
  sed -e "s|device = \"virtual:$work/lib\"|device = \"virtual:$shm/lib\"|" \
    -e 's|^buffer = "1G"|buffer = "1G"\nstart_fill = "90%"\nmin_rate = "177MB/s"|' \
    "$work/$kind.toml" >"$work/$kind-paced.toml"
done
paced() {  # paced KIND ROUND: one paced write; prints the effective rate
  local kind="$1"
  rm -rf "$shm/lib" "$work/var/cache/archives" "$work/var/spool/packed" "$work/var/spool/written" "$work/var/catalog"
  "$bin/reel" --config "$work/$kind-paced.toml" -q mt label "P$2${kind:0:1}L9"
  python3 - "$shm/lib/tapes/V00001L9/meta.json" "$model" <<'PY'
import json, sys
p = sys.argv[1]; m = json.load(open(p))
m["speed"] = json.loads(sys.argv[2])
json.dump(m, open(p, "w"))
PY
  "$bin/reel-pack" --config "$work/$kind-paced.toml" -q --in - <"$work/staged.jsonl"
  sync
  "$bin/reel-write" --config "$work/$kind-paced.toml" -q
  python3 - "$kind" "$shm/lib/tapes/V00001L9/speed.jsonl" <<'PY'
import json, sys
s = json.loads(open(sys.argv[2]).read().strip().splitlines()[-1])
steps = ", ".join("%d MB/s %.1fs" % (x["speed_bytes_per_s"] / 1e6, x["time_s"]) for x in s["steps"] if x["time_s"] > 0)
print("  paced LTO-9, %-6s: effective %.1f MB/s over %.2fs (waiting for the first fill %.2fs; %s), backhitches %d" % (
    sys.argv[1], s["effective_bytes_per_s"] / 1e6, s["elapsed_s"], s["stopped_s"], steps, s["backhitches"]), file=sys.stderr)
print(s["effective_bytes_per_s"])
PY
}
psealed=(); pclear=()
for i in $(seq "$rounds"); do
  order="sealed clear"; [ $((i % 2)) -eq 0 ] && order="clear sealed"
  for kind in $order; do
    e=$(paced "$kind" "$i")
    if [ "$kind" = sealed ]; then psealed+=("$e"); else pclear+=("$e"); fi
  done
done
rm -rf "$work/var/cache/archives"
mps=$(median "${psealed[@]}"); mpc=$(median "${pclear[@]}")
printf 'paced LTO-9, median effective rate: sealed %.1f MB/s, clear %.1f MB/s: ratio %.2f (target >= 0.9)\n' \
  "$(echo "$mps / 1000000" | bc -l)" "$(echo "$mpc / 1000000" | bc -l)" "$(echo "$mps / $mpc" | bc -l)"
