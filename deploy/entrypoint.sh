#!/bin/sh
# The container's local time follows the bot's configured zone unless TZ is set explicitly.
set -e
export TZ="${TZ:-${BOT_TIMEZONE:-Asia/Shanghai}}"
mkdir -p "${MPLCONFIGDIR:-/tmp/matplotlib}"
exec "$@"
