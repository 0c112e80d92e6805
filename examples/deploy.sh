#!/bin/sh
# Demo deploy script: release-bot runs it as an argv list (never through a shell string).
# Arguments: service version environment [weight]
set -eu
service="$1"; version="$2"; environment="$3"; weight="${4:-100}"
echo "deploying ${service} ${version} to ${environment} at ${weight}% traffic"
echo "done"
