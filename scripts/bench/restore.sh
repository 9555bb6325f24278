#!/usr/bin/env bash
# Restoring one 1 MiB file from the end of a 4 GiB archive: the bytes
# reel-restore reads from the (virtual) tape, against GNU tar reading the
# same tape file from a pipe, as it reads a tape: from the archive's start
# (counted with the bytes it reads), same run. Prints both and the ratio;
# then the same restore from the archive sealed with age (issue #22): the
# bytes read against the clear archive's.
#   Usage: scripts/bench/restore.sh
set -euo pipefail
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
work="${BENCH_SHM:-/dev/shm/reel-bench-restore}"
command -v age-keygen >/dev/null || { echo "restore.sh: needs age-keygen (scripts/install-deps)" >&2; exit 69; }
rm -rf "$work"; mkdir -p "$work"
trap 'rm -rf "$work"' EXIT
head -c 1M /dev/urandom > "$work/wanted.bin"
age-keygen -o "$work/host.age" 2>/dev/null; chmod 600 "$work/host.age"
recipient="$(age-keygen -y "$work/host.age")"
# restore_one KIND: back up the tree (sealed with an [[archive_key]] or in
# the clear) onto a fresh virtual tape, restore wanted.bin; sets $ours
# (bytes reel-restore read) and $size (the tape file's).
restore_one() {
  rm -rf "$work/src" "$work/lib" "$work/var" "$work/out"; mkdir -p "$work/src"
  for i in 1 2 3 4; do head -c 1G /dev/urandom > "$work/src/big$i.bin"; done
  cp "$work/wanted.bin" "$work/src/wanted.bin"
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
    if [ "$1" = sealed ]; then
      printf '\n[[archive_key]]\nname = "b"\nrecipients = ["%s"]\nidentity = "%s"\nstreams = ["bench"]\n' "$recipient" "$work/host.age"
    fi
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
  cmp "$work/out/wanted.bin" "$work/wanted.bin"
}
restore_one sealed
sealed_size=$size; sealed_ours=$ours
restore_one clear
# GNU tar: bytes read to extract it (rchar of a shell's /proc/PID/io, which
# takes in its reaped children's counts).
mkdir -p "$work/tar"
# From a pipe, as from a tape drive: tar cannot seek over the members
# before it (on a plain file GNU tar lseeks past them, which a tape does
# not allow), so it reads the archive from the start.
theirs=$({ cat "$tape" 2>/dev/null || true; } | (cd "$work/tar" && bash -c 'tar -xf - wanted.bin; grep ^rchar /proc/$$/io') | awk '{print $2}')
cmp "$work/tar/wanted.bin" "$work/wanted.bin"
printf 'archive %s bytes; reel-restore read %s bytes, GNU tar %s: ratio %.5f\n' "$size" "$ours" "$theirs" "$(echo "$ours / $theirs" | bc -l)"
printf 'sealed (age) archive %s bytes; reel-restore read %s bytes: %+d bytes against the clear archive (%.1f age chunks of 65552 bytes)\n' \
  "$sealed_size" "$sealed_ours" "$((sealed_ours - ours))" "$(echo "($sealed_ours - $ours) / 65552" | bc -l)"
