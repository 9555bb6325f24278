# The changer over SG_IO (`sg:/dev/sgN`, no mtx) and drives found by
# serial, sourced by pipeline.sh after crypto.sh while reel-tcmu serves
# /work/plib, from /work/p. reel's own READ ELEMENT STATUS numbers as mtx
# does and gives each drive's serial (DVCID); a configuration whose
# [[drive]]s name no element, listed in the other order, finds each
# drive's element by the serial the kernel keeps in sysfs (vpd_pg80), and
# reel-write on /dev/nst1 gets its tape through element 1 (a wrong
# element would stop it with 69).
section "changer over SG_IO: sg: and drives found by serial"
empty_drives
# The same drives and slots, numbered alike (the header names the device).
run reel changer -f "sg:$CH" list
sg_list="$(echo "$out" | tail -n +2)"
run reel changer -f "$CH" list
expect "reel changer list: sg: and mtx agree" "$(echo "$out" | tail -n +2)" "$sg_list"
run reel changer -f "sg:$CH" list --json
expect_in "reel changer list --json: drive 0's serial from DVCID" '"serial":"REEL000000"' "$out"
expect_in "reel changer list --json: drive 1's serial from DVCID" '"serial":"REEL000001"' "$out"
run reel changer -f "sg:$CH" load 4 1
expect "reel changer load 4 1 over SG_IO" "0" "$rc"
run /bin/mtx -f "$CH" status
expect_in "mtx sees what sg: moved" "Data Transfer Element 1:Full (Storage Element 4 Loaded)" "$out"
run reel changer -f "sg:$CH" unload --drive 1
expect "reel changer unload --drive 1 over SG_IO" "0" "$rc"
expect "the kernel's vpd_pg80 of nst1 holds its serial" "REEL000001" \
  "$(tail -c +5 "/sys/class/scsi_tape/nst1/device/vpd_pg80" 2>&1 | tr -d ' ')"

sed -e "s|^device = \"$CH\"|device = \"sg:$CH\"|" -e '/^element = /d' pipeline.toml |
  awk '
    /^\[\[drive\]\]/ { n++ }
    n == 1 { d0 = d0 $0 "\n"; next }
    n == 2 { d1 = d1 $0 "\n"; next }
    { print }
    END { printf "%s\n%s", d1, d0 }
  ' >serial.toml
grep -E '^(device|name|\[\[)' serial.toml | sed 's/^/note serial.toml: /'
run reel config check --config serial.toml
expect "serial.toml (two drives, no element, sg: changer) is accepted" "0" "$rc"
echo "one more file" >"$SRC/after-serial.txt"
reel-scan --config serial.toml >/dev/null 2>&1
reel-stage --config serial.toml >/dev/null 2>&1
reel-pack --config serial.toml >/dev/null 2>&1
run reel-write --config serial.toml --drive d1 -v
expect "reel-write --drive d1 (/dev/nst1, element found by serial) exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 8 | sed 's/^/note reel-write: /'
run /bin/mtx -f "$CH" status
expect_in "the tape went to drive element 1, the one /dev/nst1 is" "Data Transfer Element 1:Full" "$out"
expect_in "drive element 0 stayed empty" "Data Transfer Element 0:Empty" "$out"
empty_drives
