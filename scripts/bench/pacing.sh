#!/usr/bin/env bash
# Pacing against a modelled LTO drive, same run: a jittery source (its rate
# redrawn every 250 ms within ±40 % of 28 MB/s) fed to a drive scaled down
# tenfold from LTO-9 (12 speeds from 18 to 40 MB/s, a 64 MiB buffer,
# 1 s per backhitch), through
#   - reel-write --raw (256 MiB ring, start at 90 %, paced, min_rate 18MB/s)
#     onto a virtual tape whose speed model is that drive;
#   - mbuffer -m 256M -P 90 into reel-drivesim with the same model;
#   - dd bs=256k into reel-drivesim (no buffer at all).
# Then the same with the source stopping for 5 s every 15 s.
# Prints each one's backhitches, time repositioning and effective rate.
#   Usage: scripts/bench/pacing.sh [SIZE]     (default 600M)
set -euo pipefail
size="${1:-600M}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
for tool in mbuffer dd python3; do command -v "$tool" >/dev/null || { echo "pacing.sh: needs $tool" >&2; exit 69; }; done
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
work="${BENCH_SHM:-/dev/shm/reel-bench-pacing}"
rm -rf "$work"; mkdir -p "$work"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
model=(--native 40MB/s --min 18MB/s --steps 12 --buffer 64M --reposition 1s)
jitter=("$bin/examples/jitter" --rate 28MB/s --spread 0.4 --period 250ms --bytes "$size" --seed 3)
{
  bench_config "$work"
  cat <<TOML

[[drive]]
name = "d"
device = "virtual:$work/lib"
capacity = "64G"
block_size = "256K"
buffer = "256M"
start_fill = "90%"
min_rate = "18MB/s"
TOML
} > "$work/pipeline.toml"
"$bin/reel" --config "$work/pipeline.toml" -q mt label PACE01L9
meta="$work/lib/tapes/V00001L9/meta.json"   # the tape in drive 0
python3 - "$meta" <<'PY'
import json, sys
p = sys.argv[1]; m = json.load(open(p))
m["speed"] = {"native": "40MB/s", "min": "18MB/s", "steps": 12, "buffer": "64M",
              "reposition": "1s", "start": "50%", "low_water": "25%", "window": "1s"}
json.dump(m, open(p, "w"))
PY
report() { python3 -c '
import json, sys
s = json.loads(sys.stdin.read().strip().splitlines()[-1])
print("%-26s backhitches %3d  repositioning %5.1f s  speed changes %3d  effective %5.1f MB/s" % (sys.argv[1],
      s["backhitches"], s["repositioning_s"], s["step_changes"], s["effective_bytes_per_s"] / 1e6))
' "$1"; }
run() {  # run NAME SOURCE-ARGS...
  local name="$1"; shift
  echo "$name"
  "${jitter[@]}" "$@" | "$bin/reel-write" --config "$work/pipeline.toml" -q --raw
  report "  reel-write --raw (paced)" < "$(dirname "$meta")/speed.jsonl"
  "${jitter[@]}" "$@" | mbuffer -q -s 256k -m 256M -P 90 2>/dev/null | "$bin/reel-drivesim" "${model[@]}" --json 2>/dev/null | report "  mbuffer -m 256M -P 90"
  "${jitter[@]}" "$@" | dd bs=256k iflag=fullblock 2>/dev/null | "$bin/reel-drivesim" "${model[@]}" --json 2>/dev/null | report "  dd bs=256k (no buffer)"
}
run "jittery source, 28 MB/s ± 40 %:"
run "the same, stopping for 5 s every 15 s:" --stall-every 15s --stall 5s
