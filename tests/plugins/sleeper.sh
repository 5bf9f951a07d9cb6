#!/bin/sh
# Test plug-in (exec protocol v1): answers hello, then hangs on the first request.
read -r line || exit 0
id=$(printf '%s\n' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
printf '{"id":%s,"name":"sleeper","ops":["acquire","release","extend"]}\n' "$id"
read -r line || exit 0
echo "sleeper: waiting forever on: $line" >&2
sleep 100000
