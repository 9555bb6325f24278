# Drive health and faults on demand, sourced by pipeline.sh while reel-tcmu
# serves /work/plib (drive 0 with --needs-cleaning 0) and V00001L9 sits in
# drive 0 after the GNU tar check, from /work/p. sg_logs and sg_read_attr
# read the drives' log pages and the cartridge memory; `reel-tcmu fault`
# sets a tape's faults while it sits in its slot; reel and the real tools
# meet them through st.
B0=/dev/nst0
mtx_load() { /bin/mtx -f "$CH" load "$1" "$2" >/dev/null 2>&1; }
empty_drives() { for d in 0 1; do reel changer -f "$CH" unload --drive "$d" >/dev/null 2>&1; done; }

section "health: sg_logs and sg_read_attr"
run sg_logs -p 0x17 "$SG0"
expect_in "sg_logs: volume statistics of the tape in nst0" "Volume barcode: V00001L9" "$out"
mb="$(echo "$out" | sed -n 's/.*Lifetime megabytes written: *//p')"
expect "sg_logs: V00001L9's lifetime MB written (a 5M tape, filled)" "yes" "$([ "${mb:-0}" -ge 3 ] && echo yes)"
run sg_read_attr "$SG0"
expect_in "sg_read_attr: the medium serial of V00001L9" "Medium serial number: REELCM-V00001L9" "$out"
loads="$(echo "$out" | sed -n 's/.*Load count: *//p')"
expect "sg_read_attr: V00001L9 was loaded more than once" "yes" "$([ "${loads:-0}" -ge 2 ] && echo yes)"
run sg_logs -p 0x2e "$SG0"
expect_in "sg_logs: nst0's TapeAlert says cleaning required" "Cleaning required: 1" "$out"
run sg_logs -p 0x2e "$SG1"
expect_in "sg_logs: nst1 needs no cleaning" "Cleaning required: 0" "$out"

run sg_raw -r 256 "$SG0" 44 01 00 00 00 00 00 01 00 00
expect_in "REPORT DENSITY SUPPORT (sg_raw): the virtual density, 0x60, writable, default" "60 60 a0 00" "$out"

section "health: reel reads TapeAlert through st (SG_IO) and tells notify_command"
run reel mt -f "$B0" status
expect_in "reel mt status: nst0's TapeAlert" "TapeAlert: 20 cleaning required" "$out"
expect_in "reel mt status: the cartridge memory read through st" "Cartridge: serial REELCM-V00001L9" "$out"
expect_in "reel-write recorded d0's TapeAlert in the catalog" '"cleaning required"' \
  "$(cat catalog/drives/d0.json 2>&1)"
expect_in "reel-supervisor told notify_command: drive-alert for d0" \
  "drive-alert: drive d0 (/dev/nst0): TapeAlert 20 cleaning required; load a cleaning cartridge" \
  "$(cat notified.log 2>&1)"
expect "no drive-alert for d1" "0" "$(grep -c 'drive d1' notified.log)"

section "faults: a medium error"
/bin/mt-st -f "$B0" rewind
/bin/mt-st -f "$B0" fsf 2
start="$(/bin/mt-st -f "$B0" tell | sed -n 's/^At block \(.*\)\./\1/p')"
/bin/mt-st -f "$B0" rewind
empty_drives
run reel-tcmu --library "$PLIB" fault V00001L9 --read-error "$((start + 1))"
expect "reel-tcmu fault: a read error in V00001L9's tape file 2" \
  "V00001L9: read errors at block $((start + 1))" "$out"
mtx_load 1 0
/bin/mt-st -f "$B0" rewind
/bin/mt-st -f "$B0" fsf 2
dd if="$B0" of=/dev/null bs=262144 count=1 2>/dev/null
run dd if="$B0" of=/dev/null bs=262144 count=1
expect "dd of the bad block through st fails" "yes" "$([ "$rc" != 0 ] && echo yes)"
run sg_logs -p 0x2e "$SG0"
expect_in "sg_logs: TapeAlert read failure after the medium error" "Read failure: 1" "$out"
run sg_logs -p 0x03 "$SG0"
expect_in "sg_logs: one uncorrected read error" "Total uncorrected errors = 1" "$out"
run reel mt -f "$B0" status
expect_in "reel mt status: the volume statistics count the unrecovered read error" \
  "unrecovered errors read 1, write 0 (1 and 0 in the last load)" "$out"
run sg_logs -p 0x2e "$SG0"
expect_in "sg_logs: reading page 0x2E cleared the event flags" "Read failure: 0" "$out"
/bin/mt-st -f "$B0" rewind
empty_drives
run reel-verify --tape V00001L9
expect "reel-verify --tape V00001L9 on the bad block exits 65" "65" "$rc"
expect_in "reel-verify names the tape and the read error" "V00001L9" "$out"
run reel tapes
expect_in "reel tapes: V00001L9 is suspect" "suspect" "$(echo "$out" | grep V00001L9)"
echo "$out" | grep V00001L9 | sed 's/^/note tapes: /'

section "faults: a tape that calibrates after its load"
empty_drives
run reel-tcmu --library "$PLIB" fault V00001L9 --clear --calibrate 30s
expect "reel-tcmu fault: V00001L9 calibrates for 30 s" \
  "V00001L9: not ready for 30s after its next load" "$out"
mtx_load 1 0
run sg_turs "$SG0"
expect_in "sg_turs: a unit attention after the load" "Not ready to ready change" "$out"
run sg_raw "$SG0" 00 00 00 00 00 00
expect_in "TEST UNIT READY (sg_raw): then not ready, becoming ready" "in process of becoming ready" "$out"
run reel -v mt -f "$B0" --wait 5m status
expect "reel mt status waits for the tape and exits 0" "0" "$rc"
expect_in "reel mt says it waits for a tape that is not ready" "not ready" "$out"
expect_in "reel mt status: online after the wait" "ONLINE" "$out"

section "faults: a write-protected tape"
empty_drives
run reel-tcmu --library "$PLIB" fault V00001L9 --write-protect
expect "reel-tcmu fault: V00001L9 write protected" "V00001L9: write protected" "$out"
mtx_load 1 0
run reel mt -f "$B0" status
expect_in "reel mt status: WR_PROT" "WR_PROT" "$out"
run reel mt -f "$B0" weof
expect "reel mt weof on a write-protected tape fails" "yes" "$([ "$rc" != 0 ] && echo yes)"
expect_in "reel mt says why: write-protected" "protected" "$out"
empty_drives
reel-tcmu --library "$PLIB" fault V00001L9 --clear >/dev/null
