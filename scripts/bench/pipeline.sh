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
# Each round runs three sides on the same tree, the page cache dropped
# before each (when /proc/sys/vm/drop_caches is writable): reel-supervisor
# --once, the shell pipeline, and reel's five stages one after the other on
# a fresh catalog. The order turns round by round, so that no side is
# always the first to touch a tree the generator just wrote. Prints every
# run, then the medians: both times and the ratio (target <= 0.7), and
# where the time goes, the median wall, user and system seconds of each of
# the shell's steps and of reel's stages (under GNU time).
#   Usage: scripts/bench/pipeline.sh [xfs]   (SMALL=1G LARGE=9 in the
#   environment set the mixed part and the count of 1 GiB files; ROUNDS=3
#   the rounds; OVERLAP=true runs the supervisor with [supervisor] overlap)
# With `xfs` the run happens on a fresh XFS file system (reflink=1) in a
# loop image, the usual file system of a RAID0 cache (root and xfsprogs).
set -euo pipefail
small="${SMALL:-1G}"
large="${LARGE:-9}"
rounds="${ROUNDS:-3}"
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

# The main job's configuration, on its own virtual drive.
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
fresh() {
  rm -rf "$work/reel"
  "$bin/reel" --config "$work/pipeline.toml" -q mt label BENCH1L9
}

# step NAME COMMAND…: run it under GNU time and keep "wall user sys" under
# NAME; the names, in order, in $names.
declare -A steps
names=()
step() {
  local name="$1"; shift
  /usr/bin/time -f "%e %U %S" -o "$work/time" "$@" > /dev/null
  [ -n "${steps[$name]+x}" ] || names+=("$name")
  steps[$name]+="$(cat "$work/time");"
}
last() { local r="${steps[$1]%;}"; echo "${r##*;}" | cut -d' ' -f1; }

supervisor() {
  fresh; drop
  step "reel-supervisor --once" "$bin/reel-supervisor" --config "$work/pipeline.toml" -q --once
  local verified
  verified=$("$bin/reel" --config "$work/pipeline.toml" -q find '**' --json | grep -o '"sha256"' | wc -l)
  printf '  reel-supervisor --once: %.1fs (%d members verified on tape)\n' "$(last "reel-supervisor --once")" "$verified"
  rm -rf "$work/reel"
}

sums() { (cd "$1" && find . -type f -print0 | xargs -0 -r openssl dgst -sha256 -r | LC_ALL=C sort); }
shell() {
  rm -rf "$work/sh"; mkdir -p "$work/sh/cache" "$work/sh/readback"
  drop
  local t; t=$(now)
  step "rsync -a" rsync -a "$work/src/" "$work/sh/cache/"
  step "openssl dgst -sha256 of the cache" sh -c "$(declare -f sums); sums '$work/sh/cache' > '$work/sh/sums'"
  step "tar -cf - | mbuffer -o tape.tar; sync" sh -c "tar -cf - -C '$work/sh/cache' . | mbuffer -q -m 1G -s 256k -o '$work/sh/tape.tar' 2>/dev/null && sync"
  step "tar -xf tape.tar" tar -xf "$work/sh/tape.tar" -C "$work/sh/readback"
  step "openssl dgst -sha256 of the read-back" sh -c "$(declare -f sums); sums '$work/sh/readback' > '$work/sh/sums.back'"
  cmp -s "$work/sh/sums" "$work/sh/sums.back" || { echo "pipeline.sh: the shell's read-back differs from its cache copy" >&2; exit 1; }
  local took; took=$(since "$t")
  steps[shell]+="$took 0 0;"
  printf '  shell pipeline: %.1fs\n' "$took"
  rm -rf "$work/sh"
}

by_hand() {
  fresh; drop
  local t; t=$(now)
  for stage in scan stage pack write verify; do
    step "reel-$stage" "$bin/reel-$stage" --config "$work/pipeline.toml" -q
  done
  local took; took=$(since "$t")
  steps[stages]+="$took 0 0;"
  printf '  reel, the five stages one after the other: %.1fs\n' "$took"
  rm -rf "$work/reel"
}

sides=(supervisor shell by_hand)
for i in $(seq "$rounds"); do
  echo "round $i:"
  for j in 0 1 2; do "${sides[$(( (i - 1 + j) % 3 ))]}"; done
done

# med NAME FIELD: the median of field FIELD (1 wall, 2 user, 3 sys) of NAME.
med() {
  local xs=() r
  IFS=';' read -ra rs <<< "${steps[$1]}"
  for r in "${rs[@]}"; do xs+=("$(echo "$r" | cut -d' ' -f"$2")"); done
  median "${xs[@]}"
}
echo "medians of $rounds rounds, where the time goes:"
for name in "${names[@]}"; do
  printf '  %-40s %7.1fs wall %7.1fs user %7.1fs sys\n' "$name" "$(med "$name" 1)" "$(med "$name" 2)" "$(med "$name" 3)"
done
ours=$(med "reel-supervisor --once" 1); theirs=$(med shell 1); hand=$(med stages 1)
printf '  reel, the five stages one after the other: %.1fs (ratio %.2f)\n' "$hand" "$(echo "$hand / $theirs" | bc -l)"
printf 'whole pipeline, %s bytes, medians of %d: reel %.1fs (%.0f MB/s), shell %.1fs (%.0f MB/s): ratio %.2f (target <= 0.7)\n' \
  "$bytes" "$rounds" "$ours" "$(echo "$bytes / $ours / 1000000" | bc -l)" "$theirs" "$(echo "$bytes / $theirs / 1000000" | bc -l)" \
  "$(echo "$ours / $theirs" | bc -l)"
rm -rf "$work"
