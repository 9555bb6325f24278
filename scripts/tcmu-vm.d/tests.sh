#!/bin/sh
# The tcmu-vm checks, run by busybox sh in the VM: reel-tcmu serves drives
# 0 and 1 and the changer of a virtual library (/work/lib: 2 drives, 8
# slots, 1 import/export slot) through the kernel's TCMU user backstore
# behind tcm_loop; st binds to the drives as /dev/nst0 and /dev/nst1, ch to
# the changer as /dev/sch0, sg to all three. The changer checks are in
# changer.sh. Every check prints `ok NAME`
# or `FAIL NAME: why`; scripts/tcmu-vm counts them.
#
# Set-up order (issue #20): the backstore is created and enabled (its UIO
# device appears), reel-tcmu starts on it, then the tcm_loop target, its
# nexus, and only then the LUN (linking it scans the device at once).
T=/dev/nst0
LIB=/work/lib
CFG=/sys/kernel/config/target

ok() { echo "ok $1"; }
section() { echo "--- $1 (at $(cut -d' ' -f1 /proc/uptime) s)"; }
fail() { echo "FAIL $1: $2"; }
expect() {
  if [ "$2" = "$3" ]; then ok "$1"; else fail "$1" "expected [$2], got [$3]"; fi
}
expect_in() {
  case "$3" in
    *"$2"*) ok "$1" ;;
    *) fail "$1" "expected [$2] in [$3]" ;;
  esac
}
run() {
  out="$("$@" 2>&1)"
  rc=$?
}
# wait_for TEST... : poll (0.1 s) until TEST holds, 30 s at most; a guard
# against a hang, not a deadline.
wait_for() {
  n=0
  while ! "$@" && [ $n -lt 300 ]; do
    sleep 0.1
    n=$((n + 1))
  done
  "$@"
}
mt() { reel mt -f "$T" --wait 20s "$@"; }
tell() { mt tell | sed -n 's/^At block \(.*\)\./\1/p'; }
sum() { md5sum "$1" | cut -d' ' -f1; }
show_log() {
  dmesg | tail -n 25
  ls /sys/class/scsi_device /sys/class/scsi_tape /sys/bus/scsi/devices 2>&1 | sed 's/^/note /'
  echo "note reel-tcmu: $(cat /proc/$tcmu_pid/wchan 2>&1) $(cat /proc/$tcmu_pid/stat 2>&1 | cut -d' ' -f3)"
  cat /proc/$tcmu_pid/stack 2>/dev/null | sed 's/^/note stack /'
  for f in "$CFG"/core/user_0/tape0/statistics/scsi_lu/num_cmds "$CFG"/core/user_0/tape0/attrib/hw_queue_depth "$CFG"/core/user_0/tape0/attrib/queue_depth "$CFG"/core/user_0/tape0/alua/default_tg_pt_gp/alua_access_state "$tpg"/lun/lun_0/statistics/scsi_tgt_port/in_cmds "$tpg/transport_status" "$tpg/address" "$tpg/nexus" "$CFG/core/user_0/tape0/info"; do
    [ -e "$f" ] && echo "note $f: $(cat "$f" | tr '\n' ' ')"
  done
  for u in /sys/class/uio/*; do echo "note $u: $(cat "$u/name" 2>&1)"; done
  [ -e /tmp/reel-tcmu.log ] && tail -n 20 /tmp/reel-tcmu.log
}

section "target set-up"
# store NAME: create and enable user_0/NAME; prints its /dev/uioN.
store() {
  mkdir -p "$CFG/core/user_0/$1" && echo 1 >"$CFG/core/user_0/$1/enable" || return 1
  for u in /sys/class/uio/uio*; do
    case "$(cat "$u/name" 2>/dev/null)" in tcm-user/*/"$1" | tcm-user/*/"$1"/*) echo "/dev/${u##*/}" ;; esac
  done
}
# link TPGT NAME NODE: the LUN of backstore NAME on its own target portal
# group (a LUN added to a TPG raises a unit attention on the others of
# that TPG), then wait for NODE.
link() {
  g="$CFG/loopback/naa.5001405e1e1e1e01/tpgt_$1"
  mkdir -p "$g/lun" && echo "naa.5001405e1e1e1e1$1" >"$g/nexus" &&
    mkdir "$g/lun/lun_0" && ln -s "$CFG/core/user_0/$2" "$g/lun/lun_0/$2" ||
    fail "tcm_loop" "LUN link of $2 on tpgt_$1"
  wait_for test -c "$3"
}
for name in tape0 tape1 changer; do
  u="$(store $name)"
  if [ -z "$u" ] || ! wait_for test -c "$u"; then
    fail "backstore" "no UIO device for user_0/$name"
    show_log
    exit 0
  fi
  ok "backstore user_0/$name on $u ($(cat /sys/class/uio/${u#/dev/}/name))"
  eval "uio_$name=$u"
done
uio="$uio_tape0"
# serve NAME LIB LOG [ARGS...]: start reel-tcmu on library LIB with both
# drives and the changer (and ARGS), logging to LOG, and wait until it
# serves all three (check NAME); sets tcmu_pid, fails when it does not.
serving_in() { [ "$(grep -c "serving " "$1")" = 3 ]; }
serve() {
  s_name=$1 s_lib=$2 s_log=$3
  shift 3
  reel-tcmu -v --library "$s_lib" --drive "0=$uio_tape0" --drive "1=$uio_tape1" \
    --changer "$uio_changer" "$@" >"$s_log" 2>&1 &
  tcmu_pid=$!
  if wait_for serving_in "$s_log"; then
    ok "$s_name: reel-tcmu serves drives 0 and 1 and the changer of $s_lib"
  else
    fail "$s_name: reel-tcmu" "did not start: $(cat "$s_log")"
    return 1
  fi
}
serve "set-up" "$LIB" /tmp/reel-tcmu.log || exit 0
tpg="$CFG/loopback/naa.5001405e1e1e1e01/tpgt_1"
if link 1 tape0 "$T"; then
  ok "st attached /dev/nst0"
else
  fail "st attach" "no $T within 30 s"
  show_log
  exit 0
fi
dmesg | grep -E 'scsi|st ' | sed 's/^/note dmesg: /' | tail -n 8

section "status"
run /bin/mt-st -f "$T" status
# As with scsi_debug, st does not know the position before the first rewind.
expect_in "mt status: online, position unknown at first open" "File number=-1, block number=-1" "$out"
expect_in "mt status: variable blocks, density 0x60" "Tape block size 0 bytes. Density code 0x60" "$out"
/bin/mt-st -f "$T" rewind
run /bin/mt-st -f "$T" status
expect_in "mt rewind, status: file 0, at BOT" "File number=0, block number=0" "$out"
expect_in "mt status bits: BOT ONLINE" "BOT ONLINE" "$out"
run reel mt -f "$T" status
expect_in "reel mt status: online" "ONLINE" "$out"

section "label and identify through st"
mt rewind
run mt identify
expect "identify: the new tape is blank" "0 blank tape" "$rc $out"
run mt label TCMU01L9
expect "label TCMU01L9" "0" "$rc"
run mt identify
expect_in "identify: the label reads back through st" "TCMU01L9" "$out"

section "dd to /dev/nst0 and back"
dd if=/dev/urandom of=/tmp/data bs=262144 count=4 2>/dev/null
mt eod
expect "eod after the label: block 2" "2" "$(tell)"
dd if=/tmp/data of="$T" bs=262144 2>/tmp/dd.err || fail "dd write" "$(cat /tmp/dd.err)"
expect "tell after 4 blocks and st's closing filemark: 7" "7" "$(tell)"
mt rewind
mt fsf 1
expect "fsf 1: block 2" "2" "$(tell)"
dd if="$T" of=/tmp/back bs=262144 2>/tmp/dd.err || fail "dd read" "$(cat /tmp/dd.err)"
expect "dd reads 4 blocks of 256K back, same md5" "$(sum /tmp/data)" "$(sum /tmp/back)"
# A buffer larger than the block: st returns the block (ILI, residue).
mt rewind
mt fsf 1
run dd if="$T" of=/tmp/big bs=1048576 count=1
expect "a 1M read of a 256K block gives 256K" "262144" "$(wc -c </tmp/big | tr -d ' ')"

section "reel mt positioning"
mt eod
mt weof 2
expect "weof 2 at eod (7): block 9" "9" "$(tell)"
mt rewind
mt fsf 2
expect "fsf 2 from BOT: block 7" "7" "$(tell)"
mt fsf 1
expect "fsf 1: block 8" "8" "$(tell)"
mt bsf 2
expect "bsf 2 from 8: block 6, before the data file's filemark" "6" "$(tell)"
mt seek 3
dd if="$T" of=/tmp/one bs=262144 count=1 2>/dev/null
dd if=/tmp/data of=/tmp/second bs=262144 skip=1 count=1 2>/dev/null
expect "seek 3 reads the second data block" "$(sum /tmp/second)" "$(sum /tmp/one)"
mt rewind
expect "rewind: block 0" "0" "$(tell)"

. /changer.sh

section "the same tape as virtual:$LIB"
kill -TERM "$tcmu_pid"
wait "$tcmu_pid"
expect "reel-tcmu ends with 0 on SIGTERM" "0" "$?"
run reel mt -f "virtual:$LIB" identify
expect_in "virtual: identify shows the label written through st" "TCMU01L9" "$out"
f1="$(ls "$LIB"/tapes/*/000001 2>/dev/null | head -n 1)"
expect "virtual: tape file 1 is the dd data" "$(sum /tmp/data)" "$(sum "${f1:-/dev/null}")"
run reel mt -f "virtual:$LIB" ls
expect_in "virtual: ls sees the data file" "file 1  block 2  4 blocks" "$out"
run reel changer -f "virtual:$LIB" list
expect_in "virtual: the moves mtx made are in library.json" "mail    9  V00002L9" "$out"
run reel changer -f "virtual:$LIB" load 3 1
expect "virtual: load slot 3 into drive 1" "0" "$rc"
run reel mt -f "virtual:$LIB#1" identify
expect_in "virtual: drive 1 reads the label written through /dev/nst1" "TCMU03L9" "$out"

. /pipeline.sh
