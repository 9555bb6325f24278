#!/bin/sh
# The st-vm checks, run by busybox sh as PID 1's child in the VM, against
# /dev/nst0: the kernel's st driver over scsi_debug's tape emulation.
# Every check prints `ok NAME` or `FAIL NAME: why`; scripts/st-vm counts
# them. Data is written with busybox dd where the check is about reel's
# positioning and reading, and by reel's drive self-test (`reel mt
# selftest --tag-only`, which tags every block in its first 4 bytes) where
# it is about reel's writing, the early warning and the trailer.
#
# `reel-write --raw` writes only to a tape whose reel label reads back, and
# no label does on this emulator: that it refuses such a tape cleanly is
# checked, and the stream itself is written with `--raw --unlabelled`
# (after the end of data, no label), then read back by its tags.
#
# What scsi_debug's tape is (and what the checks marked "quirk" pin down,
# so that a change in the emulator shows up):
# - it keeps each block's length and its first 4 bytes only (reads return
#   zeros after them): blocks carry their sequence number there (`gen`);
# - block limits 512 B to 1 MiB: st refuses other sizes with EINVAL in
#   variable-block mode;
# - 10,000 blocks and filemarks at most, early warning 20 before the end:
#   the write at logical block 9,980 gets ENOSPC although it is recorded,
#   then ENOSPC (not recorded) and success alternate.
T=/dev/nst0
export REEL_CONFIG=/work/pipeline.toml

ok() { echo "ok $1"; }
section() { echo "--- $1 (at $(cut -d' ' -f1 /proc/uptime) s)"; }
fail() { echo "FAIL $1: $2"; }
# expect NAME WANT GOT
expect() {
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}
# expect_in NAME NEEDLE TEXT: TEXT contains NEEDLE
expect_in() {
  case "$3" in
    *"$2"*) ok "$1" ;;
    *) fail "$1" "expected [$2] in [$3]" ;;
  esac
}
# run CMD...: its stdout and stderr in $out, its exit code in $rc
run() {
  out="$("$@" 2>&1)"
  rc=$?
}
# A drive that never comes ready fails the check instead of stopping the VM.
mt() { reel mt -f "$T" --wait 20s "$@"; }
# "FILE BLOCK LOGICAL" from `reel mt status`
where() {
  mt status | sed -n 's/^File number=\(.*\), block number=\(.*\), logical block=\(.*\)\./\1 \2 \3/p'
}
bits() { mt status | sed -n 's/^General status bits on: //p'; }
tell() { mt tell | sed -n 's/^At block \(.*\)\./\1/p'; }
# gen FIRST COUNT SIZE: COUNT blocks of SIZE bytes, each starting with its
# sequence number (FIRST, FIRST+1, ...) as 4 bytes big-endian.
gen() {
  awk -v first="$1" -v n="$2" -v size="$3" 'BEGIN {
    pad = "x"; while (length(pad) * 2 <= size - 4) pad = pad pad;
    pad = pad substr(pad, 1, size - 4 - length(pad));
    for (i = first; i < first + n; i++) {
      printf "%c%c%c%c", int(i / 16777216) % 256, int(i / 65536) % 256, int(i / 256) % 256, i % 256;
      printf "%s", pad;
    }
  }'
}
# tags FILE SIZE: the sequence numbers of FILE's SIZE-byte blocks, one line
tags() {
  od -An -v -tu1 -w"$2" "$1" | awk '{ printf "%s%d", sep, $1 * 16777216 + $2 * 65536 + $3 * 256 + $4; sep = " " }'
}
# readfile SIZE OUT: read one tape file with SIZE-byte reads into OUT; prints
# dd's "records in" (full+partial: blocks of SIZE bytes + smaller ones)
readfile() {
  dd if="$T" of="$2" bs="$1" 2>&1 | sed -n 's/ records in$//p'
}
seq_list() { awk -v a="$1" -v b="$2" 'BEGIN { for (i = a; i <= b; i++) printf "%s%d", (i > a ? " " : ""), i }'; }

mkdir -p /work/var
cat >/work/pipeline.toml <<'EOF'
[paths]
spool = "/work/var/spool"
cache = "/work/var/cache"
catalog = "/work/var/catalog"
log = "/work/var/log"

[[stream]]
name = "vm"
source = "/srv"

[[drive]]
name = "st"
device = "/dev/nst0"
block_size = "64K"
buffer = "1M"
EOF

section "positioning (reel mt) on three files written by dd"
# quirk: after the module is loaded st does not know where the tape is.
expect "status: position unknown at load" "-1 -1" "$(where | cut -d' ' -f1-2)"
mt rewind
expect "rewind: file 0 block 0 at BOT" "0 0 0 BOT ONLINE" "$(where) $(bits)"
run mt identify
expect "identify: a new tape is blank" "0 blank tape" "$rc $out"
mt eod
expect "eod on a blank tape: block 0" "0" "$(tell)"
mt rewind
for f in 0 1 2; do
  gen $((f * 5)) 5 65536 >/tmp/file$f
  # st writes a filemark when the device is closed after a write.
  dd if=/tmp/file$f of="$T" bs=64k 2>/dev/null
done
expect "tell: three files of 5 blocks end at 18" "18" "$(tell)"
mt rewind
mt eod
# quirk (st): after MTEOM the file number is known, the block is not.
expect "eod: block 18, file 3, block in file unknown" "3 -1 18 EOD ONLINE" "$(where) $(bits)"
mt rewind
mt fsf 1
expect "fsf 1 from BOT: block 6, file 1" "1 0 6" "$(where)"
mt fsf 1
expect "fsf 1 again: block 12, file 2" "1 0 6 12" "1 0 6 $(tell)"
mt eod
mt bsf 1
expect "bsf 1 from eod: block 17, before the last filemark" "17" "$(tell)"
mt seek 8
dd if="$T" of=/tmp/one bs=64k count=1 2>/dev/null
expect "seek 8: reads block 7 of the stream" "7" "$(tags /tmp/one 65536)"
expect "tell after reading one block: 9" "9" "$(tell)"
mt rewind
for f in 0 1 2; do
  n="$(readfile 65536 /tmp/back$f)"
  expect "dd reads file $f back: 5 blocks of 64K, tags in order" "5+0 $(seq_list $((f * 5)) $((f * 5 + 4)))" "$n $(tags /tmp/back$f 65536)"
done
expect "after the last file: end of data" "0+0" "$(readfile 65536 /tmp/none)"
mt eod
mt weof 2
expect "weof 2 at eod: block 20, file 5" "5 0 20" "$(where)"
run mt ls
expect_in "ls: file 1 at block 6, 5 blocks" "file 1  block 6  5 blocks" "$out"
expect_in "ls: file 3 empty at block 18" "file 3  block 18  0 blocks" "$out"
expect_in "ls: end of data at block 20" "end of data at block 20" "$out"
# quirk (st): a read smaller than the block fails with ENOMEM and skips it.
mt rewind
run dd if="$T" of=/tmp/small bs=4k count=1
expect_in "quirk: a 4K read of a 64K block is refused" "Cannot allocate memory" "$out"
expect "quirk: ...and the block is skipped" "1" "$(tell)"
# quirk (scsi_debug): block limits 512 B to 1 MiB.
mt rewind
run dd if="$T" of=/tmp/big bs=2M count=1
expect_in "quirk: a 2M read is refused (largest block 1M)" "Invalid argument" "$out"
expect "quirk: ...and nothing moved" "0" "$(tell)"

section "labels"
run mt label T00001L9 --block-size 64K
expect_in "label refuses a tape holding data" "69 reel: error: refusing to label this tape: it holds data" "$rc $out"
run mt label T00001L9 --block-size 64K --force
expect "label --force: one block and a filemark" "0 2" "$rc $(tell)"
mt rewind
n="$(readfile 65536 /tmp/label)"
expect "the label is one 64K block starting with REEL" "1+0 REEL" "$n $(head -c 4 /tmp/label)"
# scsi_debug keeps 4 bytes of the label block: it cannot be read back.
run mt identify
expect_in "identify: label unreadable (not blank, not foreign)" "label unreadable: file 0 starts like a reel label" "$rc $out"
run mt identify --json
expect_in "identify --json: state unreadable" '"state":"unreadable"' "$out"
run mt label T00002L9
expect_in "label refuses a tape whose label is unreadable" "its label cannot be read" "$rc $out"
expect "...exit 69" "69" "$rc"
out="$( (gen 0 4 65536 | reel-write --raw -f "$T") 2>&1)"
rc=$?
expect_in "reel-write --raw refuses a tape whose label cannot be read" "cannot read the label of the tape in /dev/nst0" "$out"
expect "...exit 69, nothing written" "69 2" "$rc $(mt eod; tell)"

section "reel-write --raw --unlabelled: streams of tagged blocks"
# The tape holds the forced label and its filemark: end of data at 2.
gen 100 40 65536 >/tmp/s40
out="$(reel-write --raw --unlabelled -f "$T" </tmp/s40 2>&1)"
rc=$?
expect "a 40-block stream after the end of data, closed by a filemark" "0 43" "$rc $(mt eod; tell)"
mt rewind
mt fsf 1
n="$(readfile 65536 /tmp/back)"
expect "read back: 40 blocks of 64K, tags 100-139 in order" "40+0 $(seq_list 100 139)" "$n $(tags /tmp/back 65536)"
expect "...then the end of data" "0+0 43" "$(readfile 65536 /tmp/none) $(tell)"
gen 200 5 65536 >/tmp/s5
out="$(reel-write --raw --unlabelled -f "$T" </tmp/s5 2>&1)"
rc=$?
mt rewind
mt fsf 2
n="$(readfile 65536 /tmp/back)"
expect "a second stream appends after the first: tags 200-204, end of data at 49" \
  "0 5+0 $(seq_list 200 204) 49" "$rc $n $(tags /tmp/back 65536) $(mt eod; tell)"
# To the early warning, in 512-byte blocks (a drive of block_size 512):
# reel-write stops at the write that reports it, closes the tape file and
# exits 69; what is on tape is the stream's first blocks, every tag in
# order, as many as reel-write says it wrote.
sed 's/^block_size = "64K"/block_size = "512"/' /work/pipeline.toml >/work/small.toml
gen 1000 10000 512 >/tmp/s10k
out="$(REEL_CONFIG=/work/small.toml reel-write --raw --unlabelled -f "$T" </tmp/s10k 2>&1)"
rc=$?
expect_in "to the early warning: cut" "reel-write: error: the tape in /dev/nst0 reached its early warning" "$out"
expect "...exit 69" "69" "$rc"
span="$(echo "$out" | sed -n 's/.*a tape file from block \([0-9]*\) to \([0-9]*\)$/\1 \2/p')"
first="${span% *}"; end="${span#* }"
expect "...the tape file starts at the end of data (49) and ends past the warning (block 9980)" \
  "49 yes" "$first $([ "${end:-0}" -gt 9980 ] && echo yes || echo "no: $end")"
blocks=$((end - first - 1))
mt rewind
mt fsf 3
n="$(readfile 512 /tmp/ew)"
expect "...read back: the $blocks blocks before the filemark, tags 1000 on, in order" \
  "$blocks+0 $(seq_list 1000 $((1000 + blocks - 1)))" "$n $(tags /tmp/ew 512)"

section "drive self-test"
# quirk (scsi_debug): block content after 4 bytes is not kept.
run mt selftest --force --block-size 64K --blocks 16
expect_in "quirk: the full self-test sees content lost after the 4-byte tag" "FAIL  write and read back: block 0 of file 0 read back altered from byte 4 of 65536" "$out"
run mt selftest --force --tag-only --block-size 64K --blocks 16
echo "$out" | sed -n 's/^\(ok\|FAIL\)  */\1 selftest: /p'
expect "selftest --tag-only passes (4 steps)" "0 4" "$rc $(echo "$out" | grep -c '^ok ')"

section "fill to the early warning"
# The selftest's fill step: blocks of 512 B from the end of its third
# file (block 27) until a write reports the early warning, then a trailer
# of 4 blocks and a filemark, then every block read back by its tag.
run mt selftest --force --tag-only --fill --block-size 512 --blocks 8
echo "$out" | sed -n 's/^\(ok\|FAIL\)  */\1 selftest --fill: /p'
expect "selftest --fill passes (5 steps)" "0 5" "$rc $(echo "$out" | grep -c '^ok ')"
# The crossing write is the 9,954th from block 27: block 9,980 (quirk:
# scsi_debug's early warning is 20 blocks before its end of 10,000, and it
# fails the crossing write with ENOSPC although it records the block). The
# trailer meets st's alternation of ENOSPC (not recorded) and success.
expect_in "fill: early warning at block 9980, trailer of 4, every tag read back" \
  "early warning after 9954 blocks; 4 trailer blocks written; all 9958 blocks (4.9 MiB) read back" "$out"
expect "fill: ends after the trailer's filemark at 9986" "9986" "$(tell)"
# The same quirk seen without reel: dd writes three blocks from 9,978; the
# third gets ENOSPC, yet it is on tape, followed by the filemark st writes
# when dd closes the device.
mt seek 9978
gen 9978 3 512 >/tmp/three
run dd if=/tmp/three of="$T" bs=512
expect_in "quirk: dd's write at 9980 gets ENOSPC" "No space left on device" "$out"
expect_in "quirk: ...and dd counts 2 blocks written" "2+0 records out" "$out"
expect "quirk: ...but the block and a filemark are on tape: 9982" "9982" "$(tell)"
mt seek 9975
n="$(readfile 512 /tmp/end)"
expect "quirk: ...reading from 9975 gives the selftest's 3 blocks, then 9978-9980" \
  "6+0 $(((3 << 24) + 9948)) $(((3 << 24) + 9949)) $(((3 << 24) + 9950)) 9978 9979 9980" "$n $(tags /tmp/end 512)"
expect "quirk: ...then the end of data" "0+0 9982" "$(readfile 512 /tmp/none) $(tell)"

section "unload, load, erase"
run mt unload
expect "unload" "0" "$rc"
# quirk (scsi_debug, like a drive keeping its cartridge): after an unload
# the tape stays in the drive, not ready (not "no tape"), until a load.
run reel mt -f "$T" status
expect_in "status after unload: not ready" "the drive is not ready" "$out"
expect "...exit 75" "75" "$rc"
run mt load
expect "load: back online at BOT" "0 0 0 0 BOT ONLINE" "$rc $(where) $(bits)"
n="$(readfile 512 /tmp/f0)"
expect "after the load file 0 is the fill self-test's: 8 blocks, tags 0-7" "8+0 0 1 2 3 4 5 6 7" "$n $(tags /tmp/f0 512)"
mt rewind
mt seek 100
run mt erase
expect "erase at block 100: end of data there" "0 100" "$rc $(mt eod; tell)"
mt rewind
run mt status --json
expect_in "status --json" '"online":true,"bot":true,"eot":false,"eod":false' "$out"

section "done"
