# Sealed archives (age), sourced by sgdrive.sh after keys.sh while
# reel-tcmu serves /work/glib: a stream with an [[archive_key]] backed up
# through st (/dev/nst0) onto a blank tape, verified by reel with the host's
# identity; then one archive restored with nothing of reel, as the README
# and docs/tape-format.md §4.8 say: mt-st to the tape file, dd, the real
# age and GNU tar.
A=/work/a
ASRC=/work/asrc
section "sealed archives: mt, dd, age and GNU tar alone"
if ! command -v age >/dev/null || ! command -v age-keygen >/dev/null; then
  echo "SKIP sealed archives: age is not installed on the host"
  return 0
fi
for d in 0 1; do reel changer -f "sg:$CH" unload --drive "$d" >/dev/null 2>&1; done
mkdir -p "$A" "$ASRC/dir"
for i in $(seq 3000); do echo "A SECRET LINE $i"; done >"$ASRC/dir/notes.txt"
dd if=/dev/urandom of="$ASRC/blob.bin" bs=65536 count=12 2>/dev/null
age-keygen -o "$A/host.age" 2>/dev/null
chmod 600 "$A/host.age"
recipient="$(age-keygen -y "$A/host.age")"
cat >"$A/pipeline.toml" <<EOT
[paths]
spool = "spool"
cache = "cache"
catalog = "catalog"
log = "log"

[[stream]]
name = "a"
source = "$ASRC"
min_age = "0s"

[pack]
archive_size = "4M"

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

[[archive_key]]
name = "offsite"
recipients = ["$recipient"]
identity = "host.age"
streams = ["a"]
EOT
cd "$A"
reel changer -f "sg:$CH" load 6 0 >/dev/null 2>&1
run reel mt -f /dev/nst0 --wait 20s label V00006L9
expect "sealed: reel mt label V00006L9" "0" "$rc"
for p in reel-scan reel-stage reel-pack reel-write; do $p >/dev/null 2>&1 || echo "note $p exited $?"; done
run reel-verify
expect "sealed: reel-verify with the host's identity exits 0" "0" "$rc"
[ "$rc" = 0 ] || echo "$out" | tail -n 6 | sed 's/^/note verify: /'
f="$GLIB/tapes/V00006L9/000001"
expect "sealed: the tape file is an age file" "age-encryption.org/v1" "$(head -n 1 "$f" 2>&1)"
expect "sealed: no plaintext on tape" "0" "$(grep -c 'A SECRET LINE' "$f")"
# Nothing of reel from here on.
mkdir -p /work/ax
/bin/mt-st -f /dev/nst0 rewind
/bin/mt-st -f /dev/nst0 fsf 1
dd if=/dev/nst0 bs=262144 2>/dev/null | age -d -i "$A/host.age" | (cd /work/ax && gnutar -xf -)
expect "sealed: dd | age -d | tar -x gives notes.txt back" "$(sum "$ASRC/dir/notes.txt")" "$(sum /work/ax/dir/notes.txt 2>&1)"
expect "sealed: and blob.bin" "$(sum "$ASRC/blob.bin")" "$(sum /work/ax/blob.bin 2>&1)"
expect "sealed: and the archive's own index" "yes" "$([ -s /work/ax/REEL-INDEX.jsonl ] && echo yes)"
cd /work
