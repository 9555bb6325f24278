# Drive encryption set by reel, sourced by sgdrive.sh while reel-tcmu
# serves /work/glib: a [[drive_key]] for pool default; reel-write through
# st (/dev/nst0) labels a blank tape with the key's fingerprint and writes
# its archives encrypted by the drive (the virtual tape files hold the
# drive's envelope, no plaintext); the key is cleared when reel-write ends;
# the real stenc, given the same key file, reads the archive back with
# GNU tar, and without a key nothing reads; reel-restore over the SG_IO
# backend sets the key the label names; with another key it stops naming
# the fingerprint.
E=/work/e
ESRC=/work/esrc
section "drive keys: reel sets the drive's key"
if ! command -v stenc >/dev/null; then
  echo "SKIP drive keys: stenc is not installed on the host"
  return 0
fi
stenc() { /bin/stenc "$@" </dev/null; }
for d in 0 1; do reel changer -f "sg:$CH" unload --drive "$d" >/dev/null 2>&1; done
mkdir -p "$E" "$ESRC"
for i in $(seq 2000); do echo "THIS LINE MUST NOT BE READABLE ON TAPE $i"; done >"$ESRC/plain.txt"
dd if=/dev/urandom of="$ESRC/random.bin" bs=65536 count=8 2>/dev/null
printf '%s\nsite key\n' "$(printf '5c%.0s' $(seq 32))" >"$E/site.key"
printf '%s\nanother\n' "$(printf '77%.0s' $(seq 32))" >"$E/other.key"
chmod 600 "$E/site.key" "$E/other.key"
cat >"$E/pipeline.toml" <<EOT
[paths]
spool = "spool"
cache = "cache"
catalog = "catalog"
log = "log"

[[stream]]
name = "e"
source = "$ESRC"
min_age = "0s"

[pack]
archive_size = "1M"

[[changer]]
name = "lib"
device = "sg:$CH"

[[drive]]
name = "d0"
device = "/dev/nst0"
changer = "lib"
element = 0
block_size = "256K"
buffer = "2M"
capacity = "5M"

[[drive_key]]
name = "site"
file = "site.key"
pools = ["default"]
EOT
cd "$E"
# A blank tape of the library, labelled for this catalog (the library's
# other tapes belong to the catalog of sgdrive.sh): `reel mt label` gives
# it the pool's key.
reel changer -f "sg:$CH" load 5 0 >/dev/null 2>&1
run reel mt -f /dev/nst0 --wait 20s label V00005L9
expect "drive keys: reel mt label V00005L9 (pool default, with its key)" "0" "$rc"
expect_in "drive keys: the label names the key" "drive key" "$out"
for p in reel-scan reel-stage reel-pack; do $p >/dev/null 2>&1; done
run timeout 120 reel-write -v
expect "drive keys: reel-write through st with a [[drive_key]] exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 8 | sed 's/^/note reel-write: /'
echo "$out" | grep -i 'key' | sed 's/^/note reel-write: /'
run reel-verify
expect "drive keys: reel-verify exits 0 (it set the key)" "0" "$rc"
fp="$(reel tapes --json | sed -n 's/.*"drive_key":"\([0-9a-f]*\)".*/\1/p')"
tape="$(reel tapes --json | sed -n 's/.*"label":"\(V[0-9]*L9\)".*/\1/p')"
echo "note drive keys: tape $tape, key $fp"
expect "drive keys: the tape records a 16-digit fingerprint" "16" "${#fp}"
f="$GLIB/tapes/$tape/000001"
expect "drive keys: the archive on the virtual tape is the drive's envelope" "REELAES1" "$(head -c 8 "$f" 2>&1)"
expect "drive keys: no plaintext of the source on tape" "0" "$(grep -c 'MUST NOT BE READABLE' "$f")"
expect "drive keys: the label is in the clear and names the key" "1" \
  "$(grep -c "\"drive_key\": \"$fp\"" "$GLIB/tapes/$tape/000000")"
run stenc -f /dev/nst0 --detail
expect "drive keys: the key was cleared when reel let the drive go" "1" "$(echo "$out" | grep -c 'Drive Encryption: *off')"

# stenc with the same key file reads what reel wrote; nothing reads it
# without a key.
run stenc -f /dev/nst0 -e mixed -k "$E/site.key" -a 1
expect "drive keys: stenc -e mixed -k site.key" "0" "$rc"
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 1
run stenc -f /dev/nst0 --detail
echo "$out" | sed 's/^/note stenc: /'
expect_in "drive keys: stenc sees the next block encrypted with a key it holds" "Encrypted and able to decrypt" "$out"
run stenc -f /dev/nst0 -e mixed -k "$E/other.key" -a 1
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 1
run stenc -f /dev/nst0 --detail
expect "drive keys: stenc with another key file cannot decrypt it" "1" \
  "$(echo "$out" | grep -c 'Encrypted, but unable to decrypt')"
stenc -f /dev/nst0 -e mixed -k "$E/site.key" -a 1 >/dev/null 2>&1
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 1
run gnutar -t -b 512 -f /dev/nst0
expect_in "drive keys: GNU tar lists reel's archive through stenc's key" "plain.txt" "$out"
stenc -f /dev/nst0 -e off >/dev/null 2>&1
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 1
run dd if=/dev/nst0 of=/tmp/e-none bs=262144 count=1
expect "drive keys: without a key the archive does not read" "yes" "$([ "$rc" != 0 ] && echo yes)"

# reel-restore over reel's own SG_IO backend sets the key itself.
sed -e 's|^device = "/dev/nst0"|device = "sg:/dev/nst0"|' pipeline.toml >sg.toml
run reel-restore --config sg.toml '**' --to /work/eback
expect "drive keys: reel-restore over sg: exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 6 | sed 's/^/note restore: /'
expect "drive keys: plain.txt comes back" "$(sum "$ESRC/plain.txt")" "$(sum /work/eback/plain.txt 2>&1)"
expect "drive keys: random.bin comes back" "$(sum "$ESRC/random.bin")" "$(sum /work/eback/random.bin 2>&1)"
sed -e 's|file = "site.key"|file = "other.key"|' sg.toml >other.toml
run reel-restore --config other.toml '**' --to /work/eback2
expect "drive keys: with another key reel-restore exits 69" "69" "$rc"
expect_in "drive keys: the message names the tape's key" "encrypted by the drive with key $fp" "$out"
cd /work
