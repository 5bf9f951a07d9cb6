#!/usr/bin/python3
"""lockstorm exec-protocol v1 adapter for redis-py's own lock, redis.lock.Lock.

Drives the lock the way its users use it:
    lock = r.lock(key, timeout=ttl_s, blocking_timeout=wait_s)
    lock.acquire(blocking=...); lock.extend(t, replace_ttl=True); lock.release()
against the first server of LOCKSTORM_SERVER_URLS. See docs/exec-protocol.md.

Run it as:  --impl 'redis-py=exec:/usr/bin/python3 impls/exec/python/redis_py_lock.py'
Copy it to test your own Python lock: only handle() needs to change.
"""
import json
import os
import sys

import redis
from redis.exceptions import LockError, RedisError


def connect():
    """The first server, as lockstorm describes it (docs/exec-protocol.md): its URL (database,
    user, rediss:// for TLS), the password and the TLS files from the environment."""
    url = os.environ.get("LOCKSTORM_SERVER_URLS", "").split(",")[0]
    if not url:  # an older lockstorm: host:port only
        url = "redis://" + os.environ["LOCKSTORM_SERVERS"].split(",")[0]
    kw = {"socket_timeout": 2, "socket_connect_timeout": 2}
    if os.environ.get("LOCKSTORM_REDIS_PASSWORD"):
        kw["password"] = os.environ["LOCKSTORM_REDIS_PASSWORD"]
    if url.startswith("rediss://"):
        kw["ssl_cert_reqs"] = "none" if os.environ.get("LOCKSTORM_TLS_INSECURE") else "required"
        for env, arg in (("LOCKSTORM_TLS_CA_CERT", "ssl_ca_certs"),
                         ("LOCKSTORM_TLS_CERT", "ssl_certfile"),
                         ("LOCKSTORM_TLS_KEY", "ssl_keyfile")):
            if os.environ.get(env):
                kw[arg] = os.environ[env]
    return redis.Redis.from_url(url, **kw)


def main():
    r = connect()
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
