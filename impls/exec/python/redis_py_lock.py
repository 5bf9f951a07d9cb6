#!/usr/bin/python3
"""lockstorm exec-protocol v1 adapter for redis-py's own lock, redis.lock.Lock.

Drives the lock the way its users use it:
    lock = r.lock(key, timeout=ttl_s, blocking_timeout=wait_s)
    lock.acquire(blocking=...); lock.extend(t, replace_ttl=True); lock.release()
against the first server of LOCKSTORM_SERVERS. See docs/exec-protocol.md.

Run it as:  --impl 'redis-py=exec:/usr/bin/python3 impls/exec/python/redis_py_lock.py'
Copy it to test your own Python lock: only handle() needs to change.
"""
import json
import os
import sys

import redis
from redis.exceptions import LockError, RedisError


def main():
    host, port = os.environ["LOCKSTORM_SERVERS"].split(",")[0].rsplit(":", 1)
    r = redis.Redis(host=host, port=int(port), socket_timeout=2, socket_connect_timeout=2)
    held = {}  # lease -> redis.lock.Lock: the objects a user's code would keep

    def handle(req):
        op = req["op"]
        if op == "hello":
            return {"name": "redis-py-lock %s" % redis.__version__,
                    "ops": ["acquire", "release", "extend"]}
        if op == "acquire":
            lock = r.lock(req["key"], timeout=req["ttl_ms"] / 1000.0,
                          blocking_timeout=req["wait_ms"] / 1000.0)
            if not lock.acquire(blocking=req["wait_ms"] > 0):
                return {"acquired": False}
            lease = lock.local.token.decode()
            held[lease] = lock
            # No valid_ms: redis-py does not say; lockstorm assumes ttl - round trip.
            return {"acquired": True, "lease": lease}
        lock = held.get(req["lease"])
        if lock is None:  # e.g. from a previous (replaced) child: nothing to act on
            return {"error": "unknown lease"}
        if op == "release":
            try:
                lock.release()
            except LockError:  # LockNotOwnedError included: it was no longer ours
                del held[req["lease"]]
                return {"released": False}
            del held[req["lease"]]
            return {"released": True}
        if op == "extend":
            try:
                lock.extend(req["ttl_ms"] / 1000.0, replace_ttl=True)
            except LockError:
                return {"extended": False}
            return {"extended": True}
        return {"error": "unknown op %r" % op}

    for line in sys.stdin:  # EOF on stdin: exit
        if not line.strip():
            continue
        req = json.loads(line)
        try:
            resp = handle(req)
        except RedisError as e:  # connection errors, timeouts: the outcome is unknown
            resp = {"error": "%s: %s" % (type(e).__name__, e)}
        sys.stdout.write(json.dumps({"id": req["id"], **resp}) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
