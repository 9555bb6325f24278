#!/usr/bin/env bash
# The steady state of a two-drive library on this machine (issue #25): a
# virtual library on tmpfs with two drives whose tapes follow the LTO-9
# speed model (reel-drivesim --model lto9: writes paced by the model,
# reads capped at its top speed, 408 MB/s), and three stages at once:
#   - reel-write --drive a: packed archives from the cache onto tape A;
#   - reel-verify --drive b: a full tape B read back, every member re-hashed
#     and recorded in the catalog;
#   - reel-pack: a staged tree packed into the next archives, $PACK_NICE
#     (default 10) nicer than the other two, as reel-supervisor runs it.
# Everything (cache, spool, catalog, library) lives on tmpfs. Setting up
# (not measured): tape B written with GiB of archives, GiB of archives
# packed for tape A, a staged tree of GiB for reel-pack; each of them 10,000
# small files and 256 MiB files, archives of $ARCHIVE (default 512M).
# Each round restores tape A, the catalog and the cache, then starts the
# three together, each under GNU time; after the rounds each stage runs
# once alone, for comparison (NO_ALONE=1 leaves that out). Prints, per
# round and as medians, for each stage: wall, MB/s, CPU-seconds (user +
# system), its share of the cores over the window (first start to last
# end), the cores it used while it ran, CPU-seconds per GB and peak RSS;
# the whole machine's busy share; tape A's backhitches from its
# speed.jsonl (apart: those after an archive's closing filemark, where the
# drive writes out its buffer and stops), its effective rate, its rate
# while streaming and the share of that at top speed; the load average at
# the start; the cores the three would take at 400 MB/s each; and the rate
# reel-verify read the tape at while reading archives (its log's last line).
# Targets: tape A zero backhitches at 400 MB/s, verify at 400 MB/s.
#   Usage: scripts/bench/steady.sh [ROUNDS] [GiB]   (default 3, 2)
# The work directory is $BENCH_SHM (default /dev/shm/reel-bench-steady);
# it takes about 5 × GiB plus the 1 GiB ring. KEEP=1 leaves it.
set -euo pipefail
rounds="${1:-3}"
gib="${2:-2}"
archive="${ARCHIVE:-512M}"
repo="$(cd "$(dirname "$0")/../.." && pwd)"
# shellcheck source=lib.sh
source "$repo/scripts/bench/lib.sh"
bin="$repo/target/release"
for tool in /usr/bin/time python3 bc; do command -v "$tool" >/dev/null || { echo "steady.sh: needs $tool (scripts/install-deps)" >&2; exit 69; }; done
cargo build --quiet --release --bins --examples --manifest-path "$repo/Cargo.toml"
work="${BENCH_SHM:-/dev/shm/reel-bench-steady}"
rm -rf "$work"; mkdir -p "$work/saved"
[ -n "${KEEP:-}" ] || trap 'rm -rf "$work"' EXIT
lib="$work/lib"
# Tapes hold one set of archives (GiB) and room for the early-warning
# margin (1/64 of the tape) and the label.
capacity="$((gib * 1024 + gib * 1024 / 32 + 64))M"
{
  bench_config "$work"
  for s in full next pack; do printf '\n[[stream]]\nname = "%s"\nsource = "%s"\n' "$s" "$work/src/$s"; done
  cat <<TOML

[pack]
archive_size = "$archive"

[[drive]]
name = "a"
device = "virtual:$lib#0"
capacity = "$capacity"
block_size = "256K"
buffer = "1G"

[[drive]]
name = "b"
device = "virtual:$lib#1"
capacity = "$capacity"
block_size = "256K"
buffer = "1G"
TOML
} > "$work/pipeline.toml"
r() { "$bin/$1" --config "$work/pipeline.toml" -q "${@:2}"; }
tape_in() {  # the barcode in drive N
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["drives"][int(sys.argv[2])]["tape"])' "$lib/library.json" "$1"
}
model() {  # give the tape in drive N the LTO-9 speed model
  python3 - "$lib/tapes/$(tape_in "$1")/meta.json" "$("$bin/reel-drivesim" --model lto9 --print-params)" <<'PY'
import json, sys
p = sys.argv[1]; m = json.load(open(p))
m["speed"] = json.loads(sys.argv[2])
json.dump(m, open(p, "w"))
PY
}
# stage NAME SEED: a tree of GiB for stream NAME, scanned and staged (the
# source removed after); its staged items in $work/staged-NAME.jsonl.
stage() {
  "$bin/examples/gendata" --out "$work/src/$1" --profile small --files 10000 --seed "$2" \
    --large-count "$((gib * 4 - 1))" --large-size 256M > /dev/null
  r reel-scan --stream "$1" --out - | r reel-stage --in - --out - > "$work/staged-$1.jsonl"
  rm -rf "$work/src/$1"; mkdir -p "$work/src/$1"
}

# Setting up. Drive b gets the tape of slot 2; both tapes labelled.
r reel changer -f "virtual:$lib" load 2 1
r reel mt --drive a label WRITE1L9
r reel mt --drive b label FULL01L9
echo "setup: filling tape B" >&2
stage full 21
r reel-pack --in - --out - < "$work/staged-full.jsonl" > "$work/packed-full.jsonl"
rm -rf "$work/var/cache/staged/full"
r reel-write --drive b --in - --out - < "$work/packed-full.jsonl" > "$work/written-full.jsonl"
rm -rf "$work/var/cache/archives"/*
echo "setup: archives for tape A, a staged tree for reel-pack" >&2
stage next 22
r reel-pack --in - --out - < "$work/staged-next.jsonl" > "$work/packed-next.jsonl"
rm -rf "$work/var/cache/staged/next"
stage pack 23
model 0; model 1
tape_a="$lib/tapes/$(tape_in 0)"; tape_b="$lib/tapes/$(tape_in 1)"
cp -a "$tape_a" "$work/saved/tape-a"
cp -a "$lib/library.json" "$work/saved/"
cp -a "$work/var/catalog" "$work/saved/catalog"
ls "$work/var/cache/archives" > "$work/saved/archives"
bytes_b=$(find "$tape_b" -name '0*' ! -name 000000 -printf '%s\n' | awk '{s += $1} END {print s}')  # past the label
bytes_a=$(du -cb "$work"/var/cache/archives/* | tail -1 | cut -f1)
bytes_p=$(du -sb "$work/var/cache/staged/pack" | cut -f1)
archives_a=$(wc -l < "$work/saved/archives")
printf 'tape B: %s bytes; for tape A: %s bytes in %d archives; staged for reel-pack: %s bytes; cores %d\n' \
  "$bytes_b" "$bytes_a" "$archives_a" "$bytes_p" "$(nproc)"

busy() { awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $2+$3+$4+$5+$6+$7+$8+$9}' /proc/stat; }
declare -A all
keep() { all[$1]+="$2 "; }
m() { read -ra v <<< "${all[$1]}"; median "${v[@]}"; }
pct() { printf %.0f "$(echo "$1 * 100" | bc -l)"; }
# reel-pack runs $PACK_NICE nicer than the tape stages (default 10, as
# reel-supervisor starts it: [supervisor] background_nice).
pack_nice="${PACK_NICE:-10}"
start_stage() {  # start_stage STAGE: in the background, under GNU time
  local cmd input nicer=0
  case $1 in
    write) cmd=(reel-write --drive a --in - --out -); input=packed-next ;;
    verify) cmd=(reel-verify --drive b --in - --out -); input=written-full ;;
    pack) cmd=(reel-pack --in - --out -); input=staged-pack; nicer=$pack_nice ;;
  esac
  # Its log (info: reel-verify's last line has the rate it read the tape
  # at) goes to a file, shown when the stage fails.
  /usr/bin/time -f '%e %U %S %M' -o "$work/time.$1" nice -n "$nicer" \
    "$bin/${cmd[0]}" --config "$work/pipeline.toml" "${cmd[@]:1}" < "$work/$input.jsonl" > /dev/null 2> "$work/log.$1" &
  pids[$1]=$!
}
# round TAG STAGE…: restore tape A, the catalog and the library, run the
# stages together, keep their figures under TAG and print them.
declare -A pids
round() {
  local tag=$1; shift
  rm -rf "$tape_a" "$work/var/catalog"
  cp -a "$work/saved/tape-a" "$tape_a"
  cp -a "$work/saved/catalog" "$work/var/catalog"
  cp "$work/saved/library.json" "$lib/library.json"
  local load b0 t0 b1 t1 start window machine line s
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  read -r b0 t0 < <(busy)
  start=$(now)
  for s in "$@"; do start_stage "$s"; done
  for s in "$@"; do wait "${pids[$s]}" || { cat "$work/log.$s" >&2; echo "steady.sh: reel-$s failed" >&2; exit 1; }; done
  window=$(since "$start")
  read -r b1 t1 < <(busy)
  machine=$(echo "($b1 - $b0) / ($t1 - $t0)" | bc -l)
  keep "$tag.window" "$window"; keep "$tag.machine" "$machine"
  line="$tag $(date +%T) (load $load): window $(printf %.2f "$window")s, machine busy $(pct "$machine")%"
  for s in "$@"; do
    local wall user sys rss cpu b mbs share cores cpugb
    read -r wall user sys rss < "$work/time.$s"
    cpu=$(echo "$user + $sys" | bc -l)
    case $s in write) b=$bytes_a ;; verify) b=$bytes_b ;; pack) b=$bytes_p ;; esac
    mbs=$(echo "$b / $wall / 1000000" | bc -l)
    share=$(echo "$cpu / ($window * $(nproc))" | bc -l)
    cores=$(echo "$cpu / $wall" | bc -l)
    cpugb=$(echo "$cpu / $b * 1000000000" | bc -l)
    for k in wall mbs cpu share cores cpugb rss; do keep "$tag.$s.$k" "${!k}"; done
    line+="; $s $(printf '%.2fs %.0f MB/s %.2f CPU-s (%s%%) %d MB' "$wall" "$mbs" "$cpu" "$(pct "$share")" "$((rss / 1024))")"
    if [ "$s" = verify ]; then
      # "… read back in 4.86 s, 407.9 MB/s": the tape read from each
      # archive's first block to its end, apart from loading, positioning
      # and the catalog.
      local reading
      reading=$(sed -n 's/.* read back in [0-9.]* s, \([0-9.]*\) MB\/s$/\1/p' "$work/log.verify" | tail -1)
      keep "$tag.verify.reading" "${reading:-0}"
      line+=" (reading $reading MB/s)"
    fi
  done
  if [[ " $* " == *" write "* ]]; then
    # Tape A's model: every session of this round (one line each).
    local bh eff top strm other
    read -r bh eff top strm < <(python3 - "$tape_a/speed.jsonl" <<'PY'
import json, sys
runs = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
written = sum(r["written"] for r in runs)
elapsed = sum(r["elapsed_s"] for r in runs)
streaming = sum(r["streaming_s"] for r in runs)
top = max(s["speed_bytes_per_s"] for r in runs for s in r["steps"])
at_top = sum(s["time_s"] for r in runs for s in r["steps"] if s["speed_bytes_per_s"] == top)
print(sum(r["backhitches"] for r in runs), written / elapsed / 1e6, at_top / streaming if streaming else 0,
      written / streaming / 1e6 if streaming else 0)
PY
)
    # A filemark makes the drive write out its buffer and stop; the next
    # archive starts it again: a backhitch per archive after the first.
    other=$((bh - (archives_a - 1)))
    if ((other < 0)); then other=0; fi
    for k in bh other eff top strm; do keep "$tag.$k" "${!k}"; done
    line+="; tape A: $bh backhitches ($other not at a filemark), effective $(printf %.0f "$eff") MB/s, streaming $(printf %.0f "$strm") MB/s, $(pct "$top")% of it at top speed"
  fi
  echo "$line"
  # reel-pack's archives go; the ones waiting for tape A stay.
  (cd "$work/var/cache/archives" && ls | { grep -vxF -f "$work/saved/archives" || true; } | xargs -r rm -rf)
}
summary() {  # summary TAG STAGE…
  local tag=$1 s need=0; shift
  for s in "$@"; do
    printf '  %-6s %6.2fs %4.0f MB/s %6.2f CPU-s: %3s%% of the %d cores over the window, %.2f cores while it ran; %.2f CPU-s per GB; peak RSS %d MB\n' \
      "$s" "$(m "$tag.$s.wall")" "$(m "$tag.$s.mbs")" "$(m "$tag.$s.cpu")" "$(pct "$(m "$tag.$s.share")")" "$(nproc)" \
      "$(m "$tag.$s.cores")" "$(m "$tag.$s.cpugb")" "$(( $(m "$tag.$s.rss") / 1024 ))"
    if [ "$s" = verify ]; then
      printf '         reading the tape (each archive from its first block to its end): %.0f MB/s\n' "$(m "$tag.verify.reading")"
    fi
    need=$(echo "$need + $(m "$tag.$s.cpugb") * 0.4" | bc -l)
  done
  printf '  at 400 MB/s each, at these CPU-s per GB: %.2f of the %d cores\n' "$need" "$(nproc)"
  if [[ " $* " == *" write "* ]]; then
    printf '  tape A: %d backhitches (%d not at a filemark; target 0), effective %.0f MB/s, streaming %.0f MB/s, %s%% of streaming at top speed\n' \
      "$(m "$tag.bh")" "$(m "$tag.other")" "$(m "$tag.eff")" "$(m "$tag.strm")" "$(pct "$(m "$tag.top")")"
  fi
}

for i in $(seq "$rounds"); do round "together" write verify pack; done
# Then each stage alone, once: what it does with the machine to itself.
if [ -z "${NO_ALONE:-}" ]; then
  for s in write verify pack; do round "alone" "$s"; done
fi
echo "medians of $rounds round(s) of the three together; GiB $gib, archives of $archive:"
printf '  window %.2fs, machine busy %s%%\n' "$(m together.window)" "$(pct "$(m together.machine)")"
summary together write verify pack
printf '  targets: tape A zero backhitches at 400 MB/s, verify 400 MB/s\n'
if [ -z "${NO_ALONE:-}" ]; then
  echo "each stage alone (one round each):"
  summary alone write verify pack
fi
