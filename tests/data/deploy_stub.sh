#!/bin/sh
# A deploy script the tests control through files beside its log (no sleeps needed to steer it):
#   LOG.fail   exists -> print its content and exit 3
#   LOG.hang   exists -> hang (the provider's timeout must kill us)
#   LOG.block  a FIFO -> wait until the test writes a line to it
log="$1"; shift
printf '%s\n' "$*" >> "$log"
echo "starting $*"
if [ -f "$log.fail" ]; then cat "$log.fail"; exit 3; fi
if [ -f "$log.hang" ]; then exec sleep 300; fi
if [ -p "$log.block" ]; then read -r _ < "$log.block"; fi
echo "done $*"
