#!/usr/bin/env bash
# Restoring one 1 MiB file from the end of a 4 GiB archive: the bytes
# reel-restore reads from the (virtual) tape, against GNU tar reading the
# same tape file from a pipe, as it reads a tape: from the archive's start
# (counted with the bytes it reads), same run. Prints both and the ratio.
#   Usage: scripts/bench/restore.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
work="${BENCH_SHM:-/dev/shm/reel-bench-restore}"
rm -rf "$work"; mkdir -p "$work/src"
trap 'rm -rf "$work"' EXIT
for i in 1 2 3 4; do head -c 1G /dev/urandom > "$work/src/big$i.bin"; done
head -c 1M /dev/urandom > "$work/src/wanted.bin"
{
  bench_config "$work" "$work/src"
  cat <<TOML

[pack]
archive_size = "8G"
order = "size"            # largest first: the 1 MiB file comes last

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
rm -rf "$work/src"/big*.bin
"$bin/reel-pack" "${cfg[@]}"
"$bin/reel-write" "${cfg[@]}"
"$bin/reel-verify" "${cfg[@]}"
tape="$work/lib/tapes/V00001L9/000001"
size=$(stat -c %s "$tape")
out=$("$bin/reel-restore" --config "$work/pipeline.toml" wanted.bin --to "$work/out" 2>&1)
ours=$(echo "$out" | sed -n 's/.* \([0-9]*\) bytes read from tape.*/\1/p')
cmp "$work/out/wanted.bin" "$work/src/wanted.bin"
# GNU tar: bytes read to extract it (rchar of a shell's /proc/PID/io, which
# takes in its reaped children's counts).
mkdir -p "$work/tar"
# From a pipe, as from a tape drive: tar cannot seek over the members
# before it (on a plain file GNU tar lseeks past them, which a tape does
# not allow), so it reads the archive from the start.
theirs=$({ cat "$tape" 2>/dev/null || true; } | (cd "$work/tar" && bash -c 'tar -xf - wanted.bin; grep ^rchar /proc/$$/io') | awk '{print $2}')
cmp "$work/tar/wanted.bin" "$work/src/wanted.bin"
printf 'archive %s bytes; reel-restore read %s bytes, GNU tar %s: ratio %.5f\n' "$size" "$ours" "$theirs" "$(echo "$ours / $theirs" | bc -l)"
