#!/usr/bin/env bash
# Pacing against a modelled LTO-9 drive, same run. A seeded jittery source
# (its rate redrawn every 250 ms within ±30 % of 280 MB/s; with pauses of
# 1-2 s at random moments, on average every 20 s; then of 4-8 s, on
# average every 40 s) feeds the drive model of
# shared/src/tape/speed (preset lto9: 12 speeds from 177 to 408 MB/s, a
# 1 GiB buffer, 3 s per backhitch — see BENCHMARKS.md for the sources and
# the assumptions), through
#   - reel-write --raw (1 GiB ring, start at 90 %, paced, min_rate 177MB/s)
#     onto a virtual tape on tmpfs whose speed model is that drive;
#   - mbuffer -m 1G -P 90 into reel-drivesim --model lto9;
#   - dd bs=256k into reel-drivesim --model lto9 (no buffer at all).
# Prints each one's backhitches, time repositioning, speed changes and
# effective rate (bytes over the model's whole time, the initial fill
# included). The source's average stays above the drive's minimum, so the
# target for reel-write is zero backhitches.
#   Usage: scripts/bench/pacing.sh [SIZE] [SEED]   (default 8G, 3)
set -euo pipefail
size="${1:-8G}"
seed="${2:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
for tool in mbuffer dd python3; do command -v "$tool" >/dev/null || { echo "pacing.sh: needs $tool" >&2; exit 69; }; done
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
work="${BENCH_SHM:-/dev/shm/reel-bench-pacing}"
rm -rf "$work"; mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
model=(--model lto9)
jitter=("$bin/examples/jitter" --rate 280MB/s --spread 0.3 --period 250ms --bytes "$size" --seed "$seed")
{
  bench_config "$work"
  cat <<TOML

[[drive]]
name = "d"
device = "virtual:$work/lib"
capacity = "64G"
block_size = "256K"
buffer = "1G"
start_fill = "90%"
min_rate = "177MB/s"
TOML
} > "$work/pipeline.toml"
fresh_tape() {  # a blank virtual library, one labelled tape with the model
  rm -rf "$work/lib" "$work/var"
  "$bin/reel" --config "$work/pipeline.toml" -q mt label PACE01L9
  meta="$work/lib/tapes/V00001L9/meta.json"   # the tape in drive 0
  python3 - "$meta" "$("$bin/reel-drivesim" --model lto9 --print-params)" <<'PY'
import json, sys
p = sys.argv[1]; m = json.load(open(p))
m["speed"] = json.loads(sys.argv[2])
json.dump(m, open(p, "w"))
PY
}
report() { python3 -c '
import json, sys
s = json.loads(sys.stdin.read().strip().splitlines()[-1])
print("%-26s backhitches %3d  repositioning %5.1f s  speed changes %3d  effective %5.1f MB/s" % (sys.argv[1],
      s["backhitches"], s["repositioning_s"], s["step_changes"], s["effective_bytes_per_s"] / 1e6))
' "$1"; }
run() {  # run NAME SOURCE-ARGS...
  local name="$1"; shift
  echo "$name"
  fresh_tape
  "${jitter[@]}" "$@" | "$bin/reel-write" --config "$work/pipeline.toml" -q --raw
  report "  reel-write --raw (paced)" < "$(dirname "$meta")/speed.jsonl"
  rm -rf "$work/lib"
  "${jitter[@]}" "$@" | mbuffer -q -s 256k -m 1G -P 90 2>/dev/null | "$bin/reel-drivesim" "${model[@]}" --json 2>/dev/null | report "  mbuffer -m 1G -P 90"
  "${jitter[@]}" "$@" | dd bs=256k iflag=fullblock 2>/dev/null | "$bin/reel-drivesim" "${model[@]}" --json 2>/dev/null | report "  dd bs=256k (no buffer)"
}
run "jittery source, 280 MB/s ± 30 %:"
run "the same, with pauses of 1-2 s, on average every 20 s:" --pause-every 20s --pause 2s
run "the same, with pauses of 4-8 s (longer than the drive's buffer lasts), on average every 40 s:" --pause-every 40s --pause 8s
