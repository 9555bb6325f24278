#!/usr/bin/env bash
# reel-stage against rsync -a and cp, same run, same tree: 10,000 small files
# plus four 1 GiB files, into an empty destination on the same file system.
# Every timing ends with the data on disk (reel-stage syncs itself; `sync` is
# timed after rsync and cp), and reel-stage's time includes the SHA-256 of
# every byte, which rsync does not give.
#   Usage: scripts/bench/stage.sh [ROUNDS]      (data kept in $BENCH_DIR)
set -euo pipefail
rounds="${1:-3}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
work="${BENCH_DIR:-/var/tmp/reel-bench-stage}"
bin="$repo/target/release"
command -v rsync >/dev/null || { echo "stage.sh: needs rsync (scripts/install-deps)" >&2; exit 69; }
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"

if [ ! -f "$work/ready" ]; then
  rm -rf "$work"; mkdir -p "$work"
  "$bin/examples/gendata" --out "$work/src" --profile small --files 10000 --seed 7 --large-count 4 --large-size 1G
  bench_config "$work" "$work/src" > "$work/pipeline.toml"
  touch "$work/ready"
fi
cfg="$work/pipeline.toml"
"$bin/reel-scan" --config "$cfg" -q --out - > "$work/all.jsonl"
# The large files alone, for the throughput comparison with cp.
"$bin/reel-scan" --config "$cfg" -q --out - "$work/src/large-fixed" > "$work/large.jsonl"
cat "$work"/src/large-fixed/* > /dev/null   # warm the page cache
find "$work/src" -type f -size -200k -exec cat {} + > /dev/null

# Every run writes into a destination of its own, and only the large files
# are removed between runs: creating files right after deleting thousands
# makes ext4 hunt for inodes (recently_deleted), which would penalise
# whichever tool runs after a big rm.
out="$work/out"; rm -rf "$out"; mkdir -p "$out"; sync
cache_config() {  # a config whose cache is $out/$1
  sed "s|^cache = .*|cache = \"$out/$1\"|; s|^spool = .*|spool = \"$out/spool\"|; s|^source = .*|source = \"$work/src\"|" "$cfg" > "$out/$1.toml"
  echo "$out/$1.toml"
}
drop_large() { rm -rf "$1"/large-fixed "$1"/staged/bench/large-fixed "$1"/big*.bin; sync; }
big=$((4 * 1024 * 1024 * 1024))
rs=(); st=(); cp_=(); stl=()
for i in $(seq "$rounds"); do
  t=$(now); rsync -a "$work/src/" "$out/rsync-$i/"; sync; rs+=("$(since "$t")"); drop_large "$out/rsync-$i"
  c=$(cache_config "stage-$i"); t=$(now); "$bin/reel-stage" --config "$c" -q --in - --out - < "$work/all.jsonl" > /dev/null; st+=("$(since "$t")"); drop_large "$out/stage-$i"
  mkdir -p "$out/cp-$i"; t=$(now); cp "$work"/src/large-fixed/* "$out/cp-$i/"; sync; cp_+=("$(since "$t")"); drop_large "$out/cp-$i"
  c=$(cache_config "large-$i"); t=$(now); "$bin/reel-stage" --config "$c" -q --in - --out - < "$work/large.jsonl" > /dev/null; stl+=("$(since "$t")"); drop_large "$out/large-$i"
  printf 'round %d: rsync -a %.2fs, reel-stage %.2fs | 4 GiB: cp %.2fs, reel-stage %.2fs\n' "$i" "${rs[-1]}" "${st[-1]}" "${cp_[-1]}" "${stl[-1]}"
done
rm -rf "$out"
mr=$(median "${rs[@]}"); ms=$(median "${st[@]}"); mc=$(median "${cp_[@]}"); ml=$(median "${stl[@]}")
printf 'tree: %d files, %s\n' "$(find "$work/src" -type f | wc -l)" "$(du -sh "$work/src" | cut -f1)"
printf 'median: rsync -a %.2fs, reel-stage %.2fs: ratio %.2f (target <= 0.6)\n' "$mr" "$ms" "$(echo "$ms / $mr" | bc -l)"
printf 'large files: cp %.0f MB/s, reel-stage %.0f MB/s: %.0f%% of cp (target >= 80%%)\n' \
  "$(echo "$big / $mc / 1000000" | bc -l)" "$(echo "$big / $ml / 1000000" | bc -l)" "$(echo "100 * $mc / $ml" | bc -l)"
