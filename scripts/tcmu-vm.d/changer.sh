# The changer checks of tcmu-vm, sourced by tests.sh once /dev/nst0 passed
# its own: drive 1 and the changer are linked (each on its own target
# portal group), then the real mtx moves tapes, st sees them in the drives,
# reel's mtx parser reads mtx's output, and each drive's serial is the
# identifier the changer gives its element. Leaves drive 0 as it found it.

section "drive 1 and the changer attach"
if link 2 tape1 /dev/nst1; then ok "st attached /dev/nst1"; else fail "st attach" "no /dev/nst1"; fi
if link 3 changer /dev/sch0; then ok "ch attached /dev/sch0"; else fail "ch attach" "no /dev/sch0"; fi
# sg_of CLASS/NAME: the /dev/sgN of a device.
sg_of() { echo "/dev/$(ls "/sys/class/$1/device/scsi_generic" 2>/dev/null | head -n 1)"; }
CH="$(sg_of scsi_changer/sch0)"
SG0="$(sg_of scsi_tape/nst0)"
SG1="$(sg_of scsi_tape/nst1)"
expect "sg attached the changer and both drives" "yes" \
  "$([ -c "$CH" ] && [ -c "$SG0" ] && [ -c "$SG1" ] && echo yes)"
echo "note changer $CH, drives $SG0 $SG1"
dmesg | grep -E 'changer|ch ' | sed 's/^/note dmesg: /' | tail -n 4
mtx() { /bin/mtx -f "$CH" "$@"; }
mt1() { reel mt -f /dev/nst1 --wait 20s "$@"; }

section "mtx status"
run mtx status
expect "mtx status exits 0" "0" "$rc"
expect_in "mtx status: 2 drives, 9 slots, 1 import/export" "2 Drives, 9 Slots ( 1 Import/Export )" "$out"
expect_in "mtx status: drive 0 holds slot 1's tape" \
  "Data Transfer Element 0:Full (Storage Element 1 Loaded):VolumeTag = V00001L9" "$out"
expect_in "mtx status: drive 1 is empty" "Data Transfer Element 1:Empty" "$out"
expect_in "mtx status: slot 3's barcode" "Storage Element 3:Full :VolumeTag=V00003L9" "$out"
expect_in "mtx status: the mail slot" "Storage Element 9 IMPORT/EXPORT:Empty" "$out"
echo "$out" | sed 's/^/note mtx: /' | head -n 14

section "mtx load into drive 1, seen through /dev/nst1"
run mtx load 3 1
expect "mtx load 3 1" "0" "$rc"
run mt1 identify
expect "nst1: the tape from slot 3 is blank" "0 blank tape" "$rc $out"
run mt1 label TCMU03L9
expect "nst1: label TCMU03L9" "0" "$rc"
run mt1 identify
expect_in "nst1: identify reads TCMU03L9" "TCMU03L9" "$out"
run mtx status
expect_in "mtx status: drive 1 holds slot 3's tape" \
  "Data Transfer Element 1:Full (Storage Element 3 Loaded):VolumeTag = V00003L9" "$out"
run mtx load 2 1
expect "mtx load into a full drive fails" "failed" "$([ "$rc" -ne 0 ] && echo failed)"
run mtx unload 3 1
expect "mtx unload 3 1" "0" "$rc"
run /bin/mt-st -f /dev/nst1 status
expect_in "nst1 after the unload: no tape" "DR_OPEN" "$out"

section "mtx load 3 0: the tape labelled in drive 1, read in drive 0"
run mtx unload 1 0
expect "mtx unload 1 0 (drive 0 is served)" "0" "$rc"
run mtx load 3 0
expect "mtx load 3 0" "0" "$rc"
run mt identify
expect_in "nst0: identify reads TCMU03L9" "TCMU03L9" "$out"
run mtx unload
expect "mtx unload (drive 0 to the slot it came from)" "0" "$rc"
run mtx load 1 0
expect "mtx load 1 0 puts the first tape back" "0" "$rc"
run mt identify
expect_in "nst0: identify reads TCMU01L9 again" "TCMU01L9" "$out"

section "mtx transfer and reel's parser"
run mtx transfer 2 9
expect "mtx transfer 2 9 (to the mail slot)" "0" "$rc"
run mtx status
expect_in "mtx status: the mail slot holds V00002L9" \
  "Storage Element 9 IMPORT/EXPORT:Full :VolumeTag=V00002L9" "$out"
expect_in "mtx status: slot 2 is empty" "Storage Element 2:Empty" "$out"
run reel changer -f "$CH" list
expect_in "reel changer list (mtx parser): shape" "2 drives, 9 slots (1 import/export)" "$out"
expect_in "reel changer list: drive 0" "drive   0  V00001L9 from slot 1" "$out"
expect_in "reel changer list: mail slot" "mail    9  V00002L9" "$out"
run reel changer -f "$CH" load 4 1
expect "reel changer load 4 1 through mtx" "0" "$rc"
run reel changer -f "$CH" unload --drive 1
expect "reel changer unload --drive 1 (home slot 4)" "0" "$rc"

section "serials: INQUIRY VPD 0x80 and the changer's DVCID"
if command -v sg_raw >/dev/null; then
  sn() { sg_vpd -p sn "$1" 2>&1 | sed -n 's/.*Unit serial number: *//p'; }
  expect "sg_vpd: the changer's serial" "REELLIB001" "$(sn "$CH")"
  run sg_inq "$CH"
  expect_in "sg_inq: the changer is a medium changer" "medium changer" "$out"
  # READ ELEMENT STATUS of the drives with VOLTAG and DVCID.
  sg_raw -b -r 512 "$CH" b8 14 00 01 00 02 01 00 02 00 00 00 >/tmp/res 2>/tmp/res.err ||
    fail "sg_raw READ ELEMENT STATUS" "$(cat /tmp/res.err)"
  ids="$(strings /tmp/res | grep -o 'REEL[0-9A-Z]*' | tr '\n' ' ')"
  expect "DVCID of drive elements 0 and 1 = the serials of nst0 and nst1" \
    "$(sn "$SG0") $(sn "$SG1") " "$ids"
else
  echo "SKIP serials: sg3-utils is not installed on the host"
fi
