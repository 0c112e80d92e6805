#!/bin/sh
# A deploy script the tests control through files beside its log (no sleeps needed to steer it):
#   LOG.hang   exists -> hang (the provider's timeout must kill us)
#   LOG.block  a FIFO -> wait until the test writes a line to it
#   LOG.fail   exists -> print its content and exit 3 (looked at after the wait, so a test can fail a blocked run)
# Each run holds LOG.lock (flock) from its start to its end: a run that finds it held logs itself to
# LOG.overlaps and exits 9, so two deploys at once are caught however they came about.
log="$1"; shift
exec 9>>"$log.lock"
if ! flock -n 9; then printf '%s\n' "$*" >> "$log.overlaps"; echo "another deploy holds $log.lock"; exit 9; fi
printf '%s\n' "$*" >> "$log"
echo "starting $*"
if [ -f "$log.hang" ]; then exec sleep 300; fi
if [ -p "$log.block" ]; then read -r _ < "$log.block"; fi
if [ -f "$log.fail" ]; then cat "$log.fail"; exit 3; fi
echo "done $*"
