#!/usr/bin/env bash
# The whole pipeline against the hand-written shell pipeline that does the
# same job, same run, on a generated 10 GiB mixed tree: 1 GiB of the
# `mixed` profile (~32,000 files, odd names, links) and nine 1 GiB files:
#
#   reel:  reel-supervisor --once — scan, stage (copy + SHA-256), pack,
#          write to a virtual tape (a plain file per tape file), read every
#          member back from the tape, re-hash it, record it in the catalog.
#   shell: rsync -a SRC/ CACHE/; `openssl dgst -sha256` of the cache copy
#          (what the read-back is checked against; OpenSSL's SHA-256 uses
#          the CPU's SHA extensions as reel's does, so the ratio measures
#          the pipeline, not the hash); tar -cf - -C CACHE . | mbuffer -o
#          TAPE; sync; tar -xf TAPE -C READBACK; openssl dgst -sha256 in
#          READBACK, compared with the first.
#
# The page cache is dropped before each side (when /proc/sys/vm/drop_caches
# is writable). Prints both times and the ratio (target <= 0.7), then where
# the time goes: the shell's steps as timed in its run, and reel's five
# stages run one after the other on a fresh catalog (wall, user and system
# seconds each, under GNU time), beside the supervisor's overlapped run.
#   Usage: scripts/bench/pipeline.sh [xfs]   (SMALL=1G LARGE=9 in the
#   environment set the mixed part and the count of 1 GiB files;
#   OVERLAP=true runs the supervisor with [supervisor] overlap)
# With `xfs` the run happens on a fresh XFS file system (reflink=1) in a
# loop image, the usual file system of a RAID0 cache (root and xfsprogs).
set -euo pipefail
small="${SMALL:-1G}"
large="${LARGE:-9}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
for tool in rsync mbuffer tar openssl bc /usr/bin/time; do
  command -v "$tool" > /dev/null || { echo "pipeline.sh: needs $tool (scripts/install-deps)" >&2; exit 69; }
done
work="${BENCH_DIR:-/var/tmp/reel-bench-pipeline}"
fs=ext4-or-host
if [ "${1:-}" = xfs ]; then
  command -v mkfs.xfs > /dev/null || { echo "pipeline.sh: mkfs.xfs not found (apt-get install xfsprogs)" >&2; exit 69; }
  img=/var/tmp/reel-bench-pipeline-xfs.img; mnt=/mnt/reel-bench-pipeline-xfs
  truncate -s 64G "$img"; mkfs.xfs -q -f -m reflink=1 "$img"
  mkdir -p "$mnt"; mount -o loop "$img" "$mnt"
  trap 'umount "$mnt"; rm -f "$img"' EXIT
  work="$mnt/bench"; fs=xfs
else
  fs=$(stat -f -c %T "$(dirname "$work")")
fi
bin="$repo/target/release"
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
drop() {
  sync
  if [ -w /proc/sys/vm/drop_caches ]; then echo 3 > /proc/sys/vm/drop_caches; fi
}

rm -rf "$work"; mkdir -p "$work"
"$bin/examples/gendata" --out "$work/src" --profile mixed --total "$small" --seed 10 \
  --large-count "$large" --large-size 1G > /dev/null
bytes=$(du -sb "$work/src" | cut -f1)
files=$(find "$work/src" -type f | wc -l)
echo "tree: $files files, $bytes bytes ($fs)"

# reel: the main job, on its own virtual drive.
{
  bench_config "$work/reel" "$work/src"
  cat <<TOML

[pack]
archive_size = "2G"

[[drive]]
name = "d"
device = "virtual:$work/reel/lib"
capacity = "256G"
buffer = "1G"

[verify]
when = "archive"
level = "full"

[supervisor]
overlap = ${OVERLAP:-false}
TOML
} > "$work/pipeline.toml"
"$bin/reel" --config "$work/pipeline.toml" -q mt label BENCH1L9
drop
t=$(now)
"$bin/reel-supervisor" --config "$work/pipeline.toml" -q --once > /dev/null
ours=$(since "$t")
verified=$("$bin/reel" --config "$work/pipeline.toml" -q find '**' --json | grep -o '"sha256"' | wc -l)
printf 'reel-supervisor --once: %.1fs (%d members verified on tape)\n' "$ours" "$verified"
rm -rf "$work/reel"

# step NAME COMMAND…: run it under GNU time, one line of wall, user and
# system seconds.
step() {
  local name="$1"; shift
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" > /dev/null
  read -r wall user sys < "$work/time"
  printf '  %-40s %7.1fs wall %7.1fs user %7.1fs sys\n' "$name" "$wall" "$user" "$sys"
}

# The shell pipeline, step by step.
mkdir -p "$work/sh/cache" "$work/sh/readback"
sums() { (cd "$1" && find . -type f -print0 | xargs -0 -r openssl dgst -sha256 -r | LC_ALL=C sort); }
drop
echo "shell pipeline, its steps:"
t=$(now)
step "rsync -a" rsync -a "$work/src/" "$work/sh/cache/"
step "openssl dgst -sha256 of the cache" sh -c "$(declare -f sums); sums '$work/sh/cache' > '$work/sh/sums'"
step "tar -cf - | mbuffer -o tape.tar; sync" sh -c "tar -cf - -C '$work/sh/cache' . | mbuffer -q -m 1G -s 256k -o '$work/sh/tape.tar' 2>/dev/null && sync"
step "tar -xf tape.tar" tar -xf "$work/sh/tape.tar" -C "$work/sh/readback"
step "openssl dgst -sha256 of the read-back" sh -c "$(declare -f sums); sums '$work/sh/readback' > '$work/sh/sums.back'"
cmp -s "$work/sh/sums" "$work/sh/sums.back" || { echo "pipeline.sh: the shell's read-back differs from its cache copy" >&2; exit 1; }
theirs=$(since "$t")
printf 'rsync + openssl dgst + tar | mbuffer + tar -x + openssl dgst: %.1fs\n' "$theirs"
rm -rf "$work/sh"

# reel's stages one after the other, to say where its time goes.
"$bin/reel" --config "$work/pipeline.toml" -q mt label BENCH1L9
drop
echo "reel, the stages one after the other:"
t=$(now)
for stage in scan stage pack write verify; do
  step "reel-$stage" "$bin/reel-$stage" --config "$work/pipeline.toml" -q
done
printf '  in sequence: %.1fs (reel-supervisor --once: %.1fs)\n' "$(since "$t")" "$ours"
rm -rf "$work/reel"

printf 'whole pipeline, %s bytes: reel %.1fs (%.0f MB/s), shell %.1fs (%.0f MB/s): ratio %.2f (target <= 0.7)\n' \
  "$bytes" "$ours" "$(echo "$bytes / $ours / 1000000" | bc -l)" "$theirs" "$(echo "$bytes / $theirs / 1000000" | bc -l)" \
  "$(echo "$ours / $theirs" | bc -l)"
rm -rf "$work"
