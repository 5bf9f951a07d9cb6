#!/usr/bin/python3
"""A tiny correct lock speaking lockstorm's exec protocol v1 (docs/exec-protocol.md).

Test plug-in: SET NX PX with a random token (plus a fencing counter, atomically, in Lua),
compare-and-delete release, compare-and-pexpire extend. Uses the first server only.
"""
import json
import os
import random
import sys
import time

import redis

ACQUIRE = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return redis.call('incr', KEYS[2])
end
return 0
"""
RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
EXTEND = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""


# PROTO_LOCK_DELAY_MS: sleep this long at the start of every acquire (a planted regression).
DELAY_S = float(os.environ.get("PROTO_LOCK_DELAY_MS", "0")) / 1000.0
# PROTO_LOCK_NO_NX=1: acquire with SET ... PX but without NX, taking the key from whoever holds
# it (a planted bug: every client "acquires" at once).
NO_NX = os.environ.get("PROTO_LOCK_NO_NX", "") == "1"


def main():
    servers = os.environ["LOCKSTORM_SERVERS"].split(",")
    host, port = servers[0].rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port), socket_timeout=2, socket_connect_timeout=2)
    acquire, release, extend = (r.register_script(s) for s in (
        ACQUIRE.replace("'NX', ", "") if NO_NX else ACQUIRE, RELEASE, EXTEND))
    # The seed is the same for every child of a client: good for retry jitter, not for tokens.
    rng = random.Random(int(os.environ.get("LOCKSTORM_SEED", "0")))

    def handle(req):
        op = req["op"]
        if op == "hello":
            return {"name": "proto-lock", "ops": ["acquire", "release", "extend"]}
        if op == "acquire":
            ttl, start = req["ttl_ms"], time.monotonic()
            if DELAY_S:  # a planted slowdown (lockstorm compare's test)
                time.sleep(DELAY_S)
            deadline = start + req["wait_ms"] / 1000.0
            token = os.urandom(16).hex()
            while True:
                fence = acquire(keys=[req["key"], req["key"] + ":fence"], args=[token, ttl])
                if fence:
                    elapsed_ms = int((time.monotonic() - start) * 1000) + 1
                    return {"acquired": True, "lease": token, "valid_ms": ttl - elapsed_ms,
                            "fence": fence}
                if time.monotonic() >= deadline:
                    return {"acquired": False}
                time.sleep(min(rng.uniform(0.001, 0.01), max(0.0, deadline - time.monotonic())))
        if op == "release":
            return {"released": release(keys=[req["key"]], args=[req["lease"]]) == 1}
        if op == "extend":
            start = time.monotonic()
            if extend(keys=[req["key"]], args=[req["lease"], req["ttl_ms"]]) != 1:
                return {"extended": False}
            elapsed_ms = int((time.monotonic() - start) * 1000) + 1
            return {"extended": True, "valid_ms": req["ttl_ms"] - elapsed_ms}
        return {"error": "unknown op " + str(op)}

    for line in sys.stdin:  # EOF on stdin: exit
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            resp = handle(req)
        except redis.RedisError as e:
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps({"id": req["id"], **resp}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
