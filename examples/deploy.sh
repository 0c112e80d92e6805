#!/bin/sh
# Demo deploy script: release-bot runs it as an argv list (never through a shell string), in the directory of
# releasebot.yml. Arguments: service version environment [weight [previous_version]]. The bot also sets
# RELEASEBOT_ACTION (deploy, shift or rollback), RELEASEBOT_COLOUR and the rest (docs/config.md, deploy.run).
set -eu
service="$1"; version="$2"; environment="$3"; weight="${4:-100}"; previous="${5:-}"
echo "deploying ${service} ${version} to ${environment} at ${weight}% traffic${previous:+ (the rest on ${previous})}"
echo "done"
