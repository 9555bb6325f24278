# reel's own SCSI drive backend (`sg:`), sourced by pipeline.sh after
# swap.sh (the earlier reel-tcmu has stopped): reel-tcmu serves a new
# library of 5M tapes on the same TCMU devices; reel talks to the drives
# through their generic nodes with SG_IO, no st in the way: the drive
# self-test to the early warning, `reel mt status` with the cartridge
# memory and TapeAlert, then the whole pipeline with both drives and the
# changer over SG_IO (drives found by serial, one named by its sg node,
# one by its st node) and a restore of everything.
GLIB=/work/glib
G=/work/g
GSRC=/work/gsrc

section "sg drive: reel-tcmu serves a new library"
serve "sg drive" "$GLIB" /tmp/reel-tcmu-g.log --capacity 5M || return 0
for d in 0 1; do reel changer -f "sg:$CH" unload --drive "$d" >/dev/null 2>&1; done
reel changer -f "sg:$CH" load 1 0 >/dev/null 2>&1
expect "sg drive: the st node of drive 0 leads to $SG0" "$SG0" \
  "/dev/$(ls /sys/class/scsi_tape/nst0/device/scsi_generic 2>&1)"

run reel mt -f "sg:$SG0" --wait 20s selftest --block-size 64K --blocks 16 --fill
expect "sg drive: reel mt selftest --fill over SG_IO passes" "0" "$rc"
echo "$out" | sed 's/^/note selftest: /'
run reel mt -f "sg:$SG0" status
expect_in "sg drive: reel mt status over SG_IO: online" "ONLINE" "$out"
expect_in "sg drive: reel mt status over SG_IO: the cartridge memory" "Cartridge: serial REELCM-V00001L9" "$out"
echo "$out" | sed 's/^/note status: /'
run reel mt -f "sg:/dev/nst0" status --json
expect_in "sg drive: sg:/dev/nst0 is drive 0's generic node" "\"online\":true" "$out"
expect_in "sg drive: TapeAlert read over SG_IO (no flag up)" '"tape_alerts":[]' "$out"
run reel mt -f "sg:$SG0" rewind
run reel mt -f "sg:$SG0" erase
expect "sg drive: erase over SG_IO" "0" "$rc"

mkdir -p "$GSRC/d" "$G"
dd if=/dev/urandom of="$GSRC/large.bin" bs=65536 count=110 2>/dev/null
dd if=/dev/urandom of="$GSRC/d/middle.bin" bs=65536 count=21 2>/dev/null
for i in 1 2 3 4 5 6; do echo "small $i" >"$GSRC/d/small $i"; done
cat >"$G/pipeline.toml" <<EOT
# Both drives and the changer over SG_IO; no element: each drive is found
# by its serial among the changer's drive identifiers.
[paths]
spool = "spool"
cache = "cache"
catalog = "catalog"
log = "log"

[[stream]]
name = "g"
source = "$GSRC"
min_age = "0s"

[pack]
archive_size = "1M"

[[changer]]
name = "lib"
device = "sg:$CH"

[[drive]]
name = "d1"
device = "sg:$SG1"
changer = "lib"
block_size = "256K"
buffer = "2M"
capacity = "5M"

[[drive]]
name = "d0"
device = "sg:/dev/nst0"
changer = "lib"
block_size = "256K"
buffer = "2M"
capacity = "5M"

[verify]
when = "archive"
level = "full"

[supervisor]
tape_start_threshold = "1M"
EOT
cd "$G"
run timeout 300 reel-supervisor --once
expect "sg drive: reel-supervisor --once on SG_IO drives exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | grep -Ei 'error|warn' | tail -n 15 | sed 's/^/note supervisor: /'
run reel tapes
echo "$out" | sed 's/^/note tapes: /'
expect "sg drive: the tree took more than one tape" "yes" \
  "$([ "$(echo "$out" | grep -c 'V0000[0-9]L9')" -ge 2 ] && echo yes)"
expect "sg drive: an archive was cut at the early warning and written whole again" "yes" \
  "$(grep -q '"partial":true' catalog/written/*.jsonl && echo yes)"
run reel-restore '**' --to /work/gback
expect "sg drive: reel-restore over SG_IO exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 10 | sed 's/^/note restore: /'
bad=""
find "$GSRC" -type f >/tmp/gfiles
while IFS= read -r f; do
  cmp -s "$f" "/work/gback/${f#"$GSRC"/}" || bad="$bad [${f#"$GSRC"/}]"
done </tmp/gfiles
expect "sg drive: every file comes back byte for byte" "" "$bad"
run cat catalog/drives/*.json
echo "$out" | cut -c1-200 | sed 's/^/note drives: /'
expect_in "sg drive: reel-write kept the health of a drive it opened as sg:" '"device": "sg:/dev/' "$out"
# Drive 0 (named by its st node) emptied: reel-write must get its tape
# through element 0, the element whose drive identifier is nst0's serial.
reel changer -f "sg:$CH" unload --drive 0 >/dev/null 2>&1
echo "written after the supervisor" >"$GSRC/later.txt"
reel-scan >/dev/null 2>&1 && reel-stage >/dev/null 2>&1 && reel-pack >/dev/null 2>&1
run timeout 120 reel-write --drive d0
expect "sg drive: reel-write --drive d0 (sg:/dev/nst0, element by serial) exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 8 | sed 's/^/note reel-write: /'
run reel changer -f "sg:$CH" list
echo "$out" | sed 's/^/note changer: /'
expect "sg drive: the tape went to drive element 0" "1" "$(echo "$out" | grep -c '^drive *0 *V0')"
run reel-verify
run reel find later.txt
expect "sg drive: the file written through d0 is verified" "0" "$rc"
. /keys.sh
. /sealed.sh
cd /work
kill -TERM "$tcmu_pid"
wait "$tcmu_pid"
