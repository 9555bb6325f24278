#!/bin/sh
T=/dev/nst0
x() { echo "+ $*"; "$@" 2>&1; echo "  -> exit $?"; }
x reel mt -f $T rewind
x reel mt -f $T label T00001L9 --block-size 4K
for bs in 16M 16777215 8M 2M 1048577 1M 4K 511 256; do
  x reel mt -f $T rewind
  echo "dd bs=$bs"; dd if=$T bs=$bs count=1 2>&1 | od -An -c | head -3; dd if=$T bs=$bs count=1 of=/dev/null; echo "  -> exit $?"
done
x reel mt -f $T rewind
echo "write 100 bytes"; head -c 100 /dev/zero | dd of=$T bs=100; echo " -> $?"
x reel mt -f $T status
echo "write 511 bytes"; head -c 511 /dev/zero | dd of=$T bs=511; echo " -> $?"
x reel mt -f $T status
x reel mt -f $T rewind
x reel mt -f $T status
echo "read 4k"; dd if=$T bs=4k count=1 | od -An -c | head; 
x reel mt -f $T status
dmesg | tail -20
