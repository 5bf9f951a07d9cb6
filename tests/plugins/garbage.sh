#!/bin/sh
# Test plug-in (exec protocol v1): answers hello, then answers every request with garbage.
read -r line || exit 0
id=$(printf '%s\n' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
printf '{"id":%s,"name":"garbage","ops":["acquire","release","extend"]}\n' "$id"
while read -r line; do
  echo 'this is not json'
done
