#!/usr/bin/env bash
# reel-pack against GNU tar -cf on the same staged tree (10,000 small files
# plus four 1 GiB files), same run. Both timings end with the archive on
# disk (reel-pack fsyncs its archive; `sync` is timed after tar). reel-pack
# also checks every staged copy's SHA-256 and writes the member index.
#   Usage: scripts/bench/pack.sh [ROUNDS] [xfs]   (data kept in $BENCH_DIR)
# With `xfs` the whole run happens on a fresh XFS file system (reflink=1) in
# a loop image, the usual file system of a RAID0 cache: there reel-pack's
# copy_file_range shares the data blocks of large files instead of copying
# them (root and mkfs.xfs from xfsprogs needed; the image is removed after).
set -euo pipefail
rounds="${1:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-pack}"
if [ "${2:-}" = xfs ]; then
  command -v mkfs.xfs > /dev/null || { echo "pack.sh: mkfs.xfs not found (apt-get install xfsprogs)" >&2; exit 69; }
  img=/var/tmp/reel-bench-xfs.img; mnt=/mnt/reel-bench-xfs
  truncate -s 24G "$img"; mkfs.xfs -q -f -m reflink=1 "$img"
  mkdir -p "$mnt"; mount -o loop "$img" "$mnt"
  trap 'umount "$mnt"; rm -f "$img"' EXIT
  work="$mnt/bench"
fi
bin="$repo/target/release"
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"

if [ ! -f "$work/ready" ]; then
  rm -rf "$work"; mkdir -p "$work"
  "$bin/examples/gendata" --out "$work/src" --profile small --files 10000 --seed 7 --large-count 4 --large-size 1G
  { bench_config "$work" "$work/src"; printf '
[pack]
archive_size = "8G"
'; } > "$work/pipeline.toml"
  "$bin/reel-scan" --config "$work/pipeline.toml" -q --out - \
    | "$bin/reel-stage" --config "$work/pipeline.toml" -q --in - --out - > "$work/staged.jsonl"
  touch "$work/ready"
fi
# The staged copies: <cache>/staged/<stream>/<item>/ (one item here).
staged=$(echo "$work"/var/cache/staged/bench/*/)
staged="${staged%/}"
cat "$staged"/large-fixed/* > /dev/null
find "$staged" -type f -size -200k -exec cat {} + > /dev/null

tars=(); packs=()
for i in $(seq "$rounds"); do
  rm -f "$work/gnu.tar"; rm -rf "$work/var/cache/archives" "$work/var/spool/packed"; sync
  t=$(now); tar -cf "$work/gnu.tar" -C "$staged" .; sync; tars+=("$(since "$t")")
  rm -f "$work/gnu.tar"; sync
  t=$(now); "$bin/reel-pack" --config "$work/pipeline.toml" -q --in - --out - < "$work/staged.jsonl" > /dev/null; packs+=("$(since "$t")")
  printf 'round %d: tar -cf %.2fs, reel-pack %.2fs\n' "$i" "${tars[-1]}" "${packs[-1]}"
done
size=$(du -sb "$work/var/cache/archives" | cut -f1)
rm -rf "$work/var/cache/archives"
mt=$(median "${tars[@]}"); mp=$(median "${packs[@]}")
printf 'archive %s bytes; median: tar -cf %.2fs, reel-pack %.2fs: ratio %.2f (target <= 0.8)\n' "$size" "$mt" "$mp" "$(echo "$mp / $mt" | bc -l)"
