# One step of the power-cut test, run by the VM's init in /data (the data
# disk): sh /round.sh MODE ROUND SEED
#
#   setup   a source tree, pipeline.toml (a virtual library of small tapes
#           on the same disk), everything synced
#   cut     the invariants after the last cut (powercut-check), then a few
#           seeded changes to the source (synced: they are the user's, not
#           reel's), then the pipeline, until the host pulls the power
#   final   the invariants, the pipeline run to its end, the invariants at
#           the end (powercut-check --final)
#
# Prints `ok …`/`FAIL …` per check and `powercut: …` markers the host
# (scripts/powercut-vm) waits for.
mode=$1
round=$2
seed=$3
cfg=/data/pipeline.toml
say() { echo "powercut: $*"; }

# A seeded random number below $1 for draw number $2 of this round.
draw() {
  local h
  h=$(printf '%s' "$seed.$round.$2" | sha256sum | cut -c1-8)
  echo $((0x$h % $1))
}

# FILE SIZE: random bytes.
fill() {
  head -c "$2" /dev/urandom >"$1"
}

check() {
  powercut-check --config "$cfg" --source /data/src --changed /data/changed "$@"
}

case "$mode" in
setup)
  mkdir -p src/docs src/data/deep/er src/media "src/odd names"
  i=0
  while [ $i -lt 120 ]; do
    case $((i % 4)) in
      0) dir=src/docs ;;
      1) dir=src/data/deep ;;
      2) dir=src/data/deep/er ;;
      *) dir="src/odd names" ;;
    esac
    fill "$dir/file $i.dat" "$(draw 120000 $i)"
    i=$((i + 1))
  done
  for i in 1 2 3; do
    fill "src/media/big$i.bin" $((1200000 + $(draw 900000 $((200 + i)))))
  done
  : >src/empty
  : >changed
  cat >pipeline.toml <<'EOF'
# The power-cut test's pipeline (scripts/powercut-vm): everything on one
# ext4 disk, a virtual library of small tapes.
[paths]
spool = "spool"
cache = "cache"
catalog = "catalog"
log = "log"

[[stream]]
name = "src"
source = "/data/src"
min_age = "0s"

[pack]
archive_size = "1M"

[[changer]]
name = "library"
device = "virtual:library"
slots = 8

[[drive]]
name = "drive0"
device = "virtual:library#0"
changer = "library"
block_size = "64K"
buffer = "2M"
capacity = "16M"

[verify]
when = "archive"
level = "full"

[supervisor]
tape_start_threshold = "1M"
EOF
  sync
  say "ready: $(find src -type f | wc -l) files, $(du -sk src | cut -f1) KiB"
  ;;
cut)
  check
  # Three files change, one is new: the user's work, synced before reel
  # starts so that only reel's own writes are at stake.
  find src -type f | sort >/tmp/files
  count=$(wc -l </tmp/files)
  for k in 1 2 3; do
    f=$(sed -n "$(($(draw "$count" $k) + 1))p" /tmp/files)
    fill "$f" "$(draw 200000 $((10 + k)))"
    echo "${f#src/}" >>changed
  done
  mkdir -p src/new
  fill "src/new/round $round.bin" $((50000 + $(draw 900000 20)))
  sync
  # Mostly the supervisor; one round in four the stages one by one, as a
  # person runs them.
  if [ "$(draw 4 30)" -eq 0 ]; then
    say "go stages"
    for s in reel-scan reel-stage reel-pack reel-write reel-verify; do
      $s --config "$cfg" 2>&1 || say "$s exit $?"
    done
  else
    say "go supervisor"
    reel-supervisor --config "$cfg" --once 2>&1 || say "reel-supervisor exit $?"
  fi
  say "finished"
  # Wait for the cut.
  while :; do sleep 3600; done
  ;;
final)
  check
  say "go final"
  reel-supervisor --config "$cfg" --once 2>&1 || echo "FAIL final: reel-supervisor --once exit $?"
  check --final
  sync
  ;;
*)
  echo "FAIL boot: no step named on the kernel command line ($mode)"
  ;;
esac
