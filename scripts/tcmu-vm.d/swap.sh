# A [[drive]] with the wrong `element`, sourced by pipeline.sh at its end
# (reel-tcmu of /work/plib has stopped): reel-tcmu serves a new library,
# whose tapes are all blank, on the same TCMU devices; both drives are
# emptied, and reel-write runs with a pipeline.toml whose two [[drive]]s
# have their elements swapped. The tape change for /dev/nst0 loads drive
# 1, so /dev/nst0 stays empty: reel-write must stop with exit 69 naming
# `element`, and the tape the library loaded must still be blank.
SLIB=/work/slib
S=/work/swap

section "swapped elements: reel-tcmu serves a new library"
serve "swapped" "$SLIB" /tmp/reel-tcmu-s.log --capacity 5M || return 0
for d in 0 1; do reel changer -f "$CH" unload --drive "$d" >/dev/null 2>&1; done
run reel changer -f "$CH" list
expect "swapped: both drives are empty" "0" "$(echo "$out" | grep -c '^drive.*V0')"
echo "$out" | sed 's/^/note changer: /'

mkdir -p "$S/src"
dd if=/dev/urandom of="$S/src/one.bin" bs=65536 count=3 2>/dev/null
echo "a small file" >"$S/src/two.txt"
cat >"$S/pipeline.toml" <<EOT
# /dev/nst0 is the changer's drive 0 and /dev/nst1 its drive 1: the
# elements below are swapped on purpose.
[paths]
spool = "spool"
cache = "cache"
catalog = "catalog"
log = "log"

[[stream]]
name = "src"
source = "$S/src"
min_age = "0s"

[pack]
archive_size = "1M"

[[changer]]
name = "lib"
device = "$CH"

[[drive]]
name = "d0"
device = "/dev/nst0"
changer = "lib"
element = 1
block_size = "256K"
capacity = "5M"

[[drive]]
name = "d1"
device = "/dev/nst1"
changer = "lib"
element = 0
block_size = "256K"
capacity = "5M"
EOT
cd "$S"
reel-scan >/tmp/swap-stages.log 2>&1 && reel-stage >>/tmp/swap-stages.log 2>&1 &&
  reel-pack >>/tmp/swap-stages.log 2>&1
expect "swapped: scan, stage and pack exit 0" "0" "$?"
run timeout 120 reel-write --drive d0
expect "swapped: reel-write on d0 exits 69" "69" "$rc"
expect_in "swapped: the message names the [[drive]]'s element" "\`element\`" "$out"
echo "$out" | tail -n 3 | sed 's/^/note reel-write: /'
run reel changer -f "$CH" list
echo "$out" | sed 's/^/note changer: /'
loaded="$(echo "$out" | sed -n 's/^drive *1 *\(V[0-9A-Z]*\).*/\1/p')"
expect "swapped: the library loaded a tape into drive 1 (/dev/nst1)" "yes" \
  "$([ -n "$loaded" ] && echo yes)"
run reel mt -f /dev/nst1 --wait 20s identify
expect "swapped: that tape is still blank" "0 blank tape" "$rc $out"
run reel mt -f /dev/nst0 --wait 1s identify
expect "swapped: /dev/nst0 stays empty" "yes" "$([ "$rc" != 0 ] && echo yes)"
expect "swapped: nothing is in the written catalog" "0" \
  "$(cat catalog/written/*.jsonl 2>/dev/null | wc -l)"
cd /work
kill -TERM "$tcmu_pid"
wait "$tcmu_pid"
