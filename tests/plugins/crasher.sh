#!/bin/sh
# Test plug-in (exec protocol v1): reports its start and environment on stderr, answers hello,
# exits with code 3 on the first acquire, answers release and extend with false.
echo "crasher: started as client $LOCKSTORM_CLIENT seed $LOCKSTORM_SEED servers $LOCKSTORM_SERVERS" >&2
while read -r line; do
  id=$(printf '%s\n' "$line" | sed -n 's/.*"id":\([0-9]*\).*/\1/p')
  case "$line" in
    *'"op":"hello"'*) printf '{"id":%s,"name":"crasher","ops":["acquire","release","extend"]}\n' "$id" ;;
    *'"op":"acquire"'*) exit 3 ;;
    *'"op":"release"'*) printf '{"id":%s,"released":false}\n' "$id" ;;
    *'"op":"extend"'*) printf '{"id":%s,"extended":false}\n' "$id" ;;
    *) printf '{"id":%s,"error":"unknown op"}\n' "$id" ;;
  esac
done
