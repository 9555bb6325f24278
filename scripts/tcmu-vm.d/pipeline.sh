# The whole pipeline through the kernel's drivers, sourced by tests.sh at
# its end (reel-tcmu of /work/lib has stopped): reel-tcmu serves a new
# library of small tapes (5M, early warning 1M before the end) on the same
# TCMU devices, and `reel-supervisor --once` backs up a tree larger than
# one tape with two [[drive]]s on /dev/nst0 and /dev/nst1 and the
# [[changer]] on the changer's /dev/sgN (through the real mtx). Then
# reel-restore brings everything back, and GNU tar alone reads one archive
# through mt-st.
PLIB=/work/plib
P=/work/p
SRC=/work/src

section "pipeline: reel-tcmu serves a library of 5M tapes"
serve "pipeline" "$PLIB" /tmp/reel-tcmu-p.log --capacity 5M --needs-cleaning 0 || return 0

# The source: about 8 MiB, files larger than a block and than an archive,
# odd names.
mkdir -p "$SRC/sub dir/deeper" "$P"
dd if=/dev/urandom of="$SRC/big one.bin" bs=65536 count=40 2>/dev/null
dd if=/dev/urandom of="$SRC/sub dir/two.bin" bs=65536 count=13 2>/dev/null
dd if=/dev/urandom of="$SRC/sub dir/three.bin" bs=65536 count=48 2>/dev/null
dd if=/dev/urandom of="$SRC/sub dir/deeper/ünïcödé.dat" bs=65536 count=9 2>/dev/null
dd if=/dev/urandom of="$SRC/it's a quote" bs=65536 count=5 2>/dev/null
dd if=/dev/urandom of="$SRC/$(printf 'long%.0s' $(seq 40))" bs=1000 count=300 2>/dev/null
dd if=/dev/urandom of="$SRC/sub dir/tail;semi" bs=4096 count=70 2>/dev/null
for i in 1 2 3 4 5; do echo "small file $i" >"$SRC/small $i.txt"; done
: >"$SRC/empty"
ln -s "big one.bin" "$SRC/a link"
echo "note source: $(find "$SRC" -type f | wc -l) files, $(du -sk "$SRC" | cut -f1) KiB"

cat >"$P/pipeline.toml" <<EOF
# tcmu-vm's pipeline: two drives of the emulated library through st, the
# changer through mtx on its sg node.
[paths]
spool = "spool"
cache = "cache"
catalog = "catalog"
log = "log"

[[stream]]
name = "src"
source = "$SRC"
min_age = "0s"

[pack]
archive_size = "1M"

[[changer]]
name = "lib"
device = "$CH"

# Each drive's element in the changer (mtx's Data Transfer Element N):
# /dev/nst0 is drive 0 of reel-tcmu, /dev/nst1 drive 1.
[[drive]]
name = "d0"
device = "/dev/nst0"
changer = "lib"
element = 0
block_size = "256K"
buffer = "2M"
capacity = "5M"

[[drive]]
name = "d1"
device = "/dev/nst1"
changer = "lib"
element = 1
block_size = "256K"
buffer = "2M"
capacity = "5M"

[verify]
when = "archive"
level = "full"

[supervisor]
tape_start_threshold = "1M"
notify_command = ["sh", "-c", "echo \"\$0: \$1\" >> /work/p/notified.log"]
EOF
cd "$P"
start_p=$(cut -d' ' -f1 /proc/uptime)
timeout 240 reel-supervisor --once >/tmp/supervisor.log 2>&1
rc=$?
expect "pipeline: reel-supervisor --once exits 0" "0" "$rc"
echo "note reel-supervisor took $(awk "BEGIN{print $(cut -d' ' -f1 /proc/uptime) - $start_p}") s"
if [ "$rc" != 0 ]; then
  grep -Ei 'error|warn|exit' /tmp/supervisor.log | tail -n 30 | sed 's/^/note supervisor: /'
  tail -n 10 /tmp/reel-tcmu-p.log | sed 's/^/note reel-tcmu: /'
fi

section "pipeline: tapes, labels, the early warning"
run reel tapes
echo "$out" | sed 's/^/note tapes: /'
ntapes=$(echo "$out" | grep -c 'V0000[0-9]L9')
expect "pipeline: the tree took more than one tape" "yes" "$([ "$ntapes" -ge 2 ] && echo yes)"
expect_in "pipeline: a tape filled" "full" "$out"
partial="$(grep -l '"partial":true' catalog/written/*.jsonl 2>/dev/null | head -n 1)"
expect "pipeline: an archive was cut at the early warning" "yes" "$([ -n "$partial" ] && echo yes)"
if [ -n "$partial" ]; then
  # src-…-a002-V00001L9-partial: the whole copy is src-…-a002-<its tape>.
  base="$(grep '"partial":true' "$partial" | head -n 1 | sed 's/.*"archive":"\([^"]*\)-[^-]*-partial".*/\1/')"
  echo "note cut archive: $base on ${partial##*/}"
  whole="$(cat catalog/written/*.jsonl | grep "\"archive\":\"$base[-\"]" | grep -c '"partial":false')"
  grep -h '"type":"archive"' catalog/written/*.jsonl | cut -c1-150 | sed 's/^/note written: /' 
  expect "pipeline: the cut archive was written whole on the next tape" "1" "$whole"
fi
grep -hE 'd1|nst1|drive 1' /tmp/supervisor.log | head -n 4 | sed 's/^/note supervisor: /'
run reel changer -f "$CH" list
echo "$out" | sed 's/^/note changer: /'

section "pipeline: every file verified"
missing=""
nfiles=0
find "$SRC" -type f >/tmp/files
while IFS= read -r f; do
  rel="${f#"$SRC"/}"
  nfiles=$((nfiles + 1))
  reel find "$rel" >/tmp/find.out 2>&1 || missing="$missing [$rel]"
done </tmp/files
expect "pipeline: reel find has each of the $nfiles files verified" "" "$missing"

section "pipeline: reel-restore of everything"
run reel-restore '**' --to /work/back
expect "pipeline: reel-restore exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 15 | sed 's/^/note restore: /'
bad=""
while IFS= read -r f; do
  back="/work/back/${f#"$SRC"/}"
  cmp -s "$f" "$back" || bad="$bad [${f#"$SRC"/}]"
done </tmp/files
expect "pipeline: every file comes back byte for byte (cmp)" "" "$bad"
[ -n "$bad" ] && find /work/back | head -n 12 | sed 's/^/note back: /'
expect "pipeline: the symlink comes back" "big one.bin" \
  "$(readlink "/work/back/a link")"

section "pipeline: one archive through mt-st and GNU tar alone"
# The first tape (V00001L9, labelled in drive 0 at the start) in drive 0:
# file 0 is the label, file 1 the first archive (the symlink alone: pack
# order is by path), file 2 the second, with the large files.
for d in 0 1; do reel changer -f "$CH" unload --drive "$d" >/dev/null 2>&1; done
run /bin/mtx -f "$CH" load 1 0
expect "pipeline: mtx load 1 0" "0" "$rc"
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 2
gnutar -t -v -b 512 -f /dev/nst0 2>&1 | head -n 12 | sed 's/^/note tar -t: /'
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 2
mkdir -p /work/tar && cd /work/tar
gnutar -x -b 512 -f /dev/nst0 2>/tmp/tar.err
expect "pipeline: GNU tar reads tape file 2 of V00001L9 from /dev/nst0" "0" "$?"
same=0
differ=""
find . -type f >/tmp/tarfiles
while IFS= read -r f; do
  # Members are named by their path in the stream, or below a top folder.
  src="$SRC/${f#./}"
  [ -f "$src" ] || src="$SRC/${f#./*/}"
  # A part of a file split across archives is not the whole file.
  [ -f "$src" ] && [ "$(wc -c <"$f")" = "$(wc -c <"$src")" ] || continue
  if cmp -s "$f" "$src"; then same=$((same + 1)); else differ="$differ [$f]"; fi
done </tmp/tarfiles
echo "note tar: $(tr '\n' ' ' </tmp/tarfiles) $(head -c 200 /tmp/tar.err)"
expect "pipeline: the archive's whole files equal the source" "" "$differ"
expect "pipeline: GNU tar gave back at least one whole file" "yes" "$([ "$same" -ge 1 ] && echo yes)"
cd /work/p
. /faults.sh
. /crypto.sh
. /serial.sh
cd /work
kill -TERM "$tcmu_pid"
wait "$tcmu_pid"

. /swap.sh
. /sgdrive.sh
