# Drive encryption through the real stenc, sourced by pipeline.sh after
# faults.sh while reel-tcmu serves /work/plib: stenc sets a key on
# /dev/nst0 (SECURITY PROTOCOL OUT through st), dd writes through st, the
# virtual tape holds no plaintext, and the data reads back only with that
# key; stenc --detail reports the drive's modes and the next block.
section "encryption: stenc and a key"
if command -v stenc >/dev/null; then
  mkdir -p /var/log
  empty_drives
  mtx_load 5 0
  /bin/mt-st -f "$B0" rewind
  tape5="$(reel changer -f "$CH" list | sed -n 's/^drive *0 *\(V[0-9]*L9\).*/\1/p')"
  echo "note encryption: tape $tape5 in drive 0"
  # stenc's key files: the key in hex, then a description (stenc -g would
  # wait for keystrokes to seed its generator).
  printf '%s\nfirst\n' "$(printf '1f%.0s' $(seq 32))" >/tmp/k1
  printf '%s\nsecond\n' "$(printf 'a2%.0s' $(seq 32))" >/tmp/k2
  chmod 600 /tmp/k1 /tmp/k2
  stenc() { /bin/stenc "$@" </dev/null; }
  run stenc -f "$B0" -e on -k /tmp/k1 -a 1
  expect "stenc -e on -k k1" "0" "$rc"
  [ "$rc" = 0 ] || echo "$out" | sed 's/^/note stenc: /'
  run stenc -f "$B0" --detail
  expect "stenc --detail: drive encryption on" "1" "$(echo "$out" | grep -c 'Drive Encryption: *on')"
  # The key file's description line is the key's uKAD.
  expect "stenc --detail: the key's descriptor" "1" "$(echo "$out" | grep -c 'Drive Key Desc.(uKAD): *first')"
  /bin/mt-st -f "$B0" rewind
  dd if=/tmp/data of="$B0" bs=262144 2>/dev/null || fail "dd write, encrypted" "$?"
  f="$PLIB/tapes/$tape5/000000"
  expect "the virtual tape file begins with the encrypted envelope" "REELAES1" "$(head -c 8 "$f" 2>&1)"
  # Where the first block's data would be (behind the 8+8+12+2-byte
  # envelope and the 5-byte uKAD "first"): ciphertext, not the data.
  head -c 4096 /tmp/data >/tmp/d4k
  tail -c +36 "$f" 2>/dev/null | head -c 4096 >/tmp/t4k
  expect "the virtual tape holds no plaintext of the data" "differ" \
    "$(cmp -s /tmp/d4k /tmp/t4k && echo same || echo differ)"
  /bin/mt-st -f "$B0" rewind
  run stenc -f "$B0" --detail
  expect "stenc --detail: next block encrypted and readable" "1" \
    "$(echo "$out" | grep -c 'Volume Encryption: *Encrypted and able to decrypt')"
  dd if="$B0" of=/tmp/enc-back bs=262144 2>/dev/null
  expect "dd with key 1 reads the data back" "$(sum /tmp/data)" "$(sum /tmp/enc-back)"
  stenc -f "$B0" -e on -k /tmp/k2 -a 1 >/dev/null 2>&1
  /bin/mt-st -f "$B0" rewind
  run stenc -f "$B0" --detail
  expect "stenc --detail: with key 2, unable to decrypt" "1" \
    "$(echo "$out" | grep -c 'Encrypted, but unable to decrypt')"
  run dd if="$B0" of=/tmp/enc-wrong bs=262144 count=1
  expect "dd with key 2 fails" "yes" "$([ "$rc" != 0 ] && echo yes)"
  stenc -f "$B0" -e off >/dev/null 2>&1
  /bin/mt-st -f "$B0" rewind
  run dd if="$B0" of=/tmp/enc-none bs=262144 count=1
  expect "dd without a key fails" "yes" "$([ "$rc" != 0 ] && echo yes)"
  stenc -f "$B0" -e on -k /tmp/k1 -a 1 >/dev/null 2>&1
  /bin/mt-st -f "$B0" rewind
  dd if="$B0" of=/tmp/enc-again bs=262144 2>/dev/null
  expect "dd with key 1 again reads the data" "$(sum /tmp/data)" "$(sum /tmp/enc-again)"
  run stenc -f "$B0" -e off
  expect "stenc -e off" "0" "$rc"
  run stenc -f "$B0" --detail
  expect "stenc --detail: drive encryption off" "1" "$(echo "$out" | grep -c 'Drive Encryption: *off')"
  empty_drives
else
  echo "SKIP encryption: stenc is not installed on the host"
fi
