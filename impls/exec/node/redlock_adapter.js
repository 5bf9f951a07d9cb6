#!/usr/bin/env node
// lockstorm exec-protocol v1 adapter for node-redlock (npm "redlock" v5, over ioredis).
//
// Uses node-redlock the way a TypeScript service would: one ioredis client per node (ALL
// the nodes in LOCKSTORM_SERVER_URLS), one Redlock over them, acquire / release / extend on Lock
// objects. The lease handed to lockstorm is the Lock's random value, which keys a Map of the
// live Lock objects. See docs/exec-protocol.md.
//
// Install once:  impls/exec/node/install.sh
// Run:           --impl 'node-redlock=exec:node impls/exec/node/redlock_adapter.js'
"use strict";

const readline = require("readline");
const Redis = require("ioredis");
const { default: Redlock, ExecutionError, ResourceLockedError } = require("redlock");

const RETRY_DELAY_MS = 50;
const RETRY_JITTER_MS = 25;

// Every node as lockstorm describes it (docs/exec-protocol.md): URLs with the database and
// rediss:// for TLS, the password and the TLS files in the environment.
const env = process.env;
const urls = (env.LOCKSTORM_SERVER_URLS || "").split(",").filter((u) => u);
const tlsNames = (env.LOCKSTORM_TLS_SERVER_NAMES || "").split(",");
const nodes = urls.length
  ? urls
  : env.LOCKSTORM_SERVERS.split(",").map((hostPort) => `redis://${hostPort}`); // older lockstorm
const clients = nodes.map((url, n) => {
  const options = { maxRetriesPerRequest: 1, commandTimeout: 1000 };
  if (env.LOCKSTORM_REDIS_PASSWORD) options.password = env.LOCKSTORM_REDIS_PASSWORD;
  if (url.startsWith("rediss://")) {
    const fs = require("fs");
    options.tls = { rejectUnauthorized: !env.LOCKSTORM_TLS_INSECURE };
    const name = tlsNames[n];
    if (name && !require("net").isIP(name)) options.tls.servername = name; // behind a proxy
    if (name && require("net").isIP(name)) {
      // An IP in the certificate: check it against the real server's, not the proxy's.
      options.tls.checkServerIdentity = (_host, cert) => require("tls").checkServerIdentity(name, cert);
    }
    if (env.LOCKSTORM_TLS_CA_CERT) options.tls.ca = fs.readFileSync(env.LOCKSTORM_TLS_CA_CERT);
    if (env.LOCKSTORM_TLS_CERT) options.tls.cert = fs.readFileSync(env.LOCKSTORM_TLS_CERT);
    if (env.LOCKSTORM_TLS_KEY) options.tls.key = fs.readFileSync(env.LOCKSTORM_TLS_KEY);
  }
  const client = new Redis(url, options);
  client.on("error", (e) => console.error(`ioredis ${url}: ${e.message}`));
  return client;
});
const redlock = new Redlock(clients, {
  driftFactor: 0.01,
  retryCount: 0, // release and extend: one attempt; acquire sets its own from wait_ms
  retryDelay: RETRY_DELAY_MS,
  retryJitter: RETRY_JITTER_MS,
});
const locks = new Map(); // lease (the Lock's value) -> Lock

// True if a redlock failure is a definite "no": every node that voted against said the
// resource was locked (or not ours), none failed with a connection error or timeout.
async function definitelyRefused(error) {
  if (!(error instanceof ExecutionError)) return false;
  const attempts = await Promise.all(error.attempts);
  return attempts.every((stats) =>
    [...stats.votesAgainst.values()].every((e) => e instanceof ResourceLockedError));
}

async function handle(req) {
  switch (req.op) {
    case "hello":
      return { name: "node-redlock", ops: ["acquire", "release", "extend"] };
    case "acquire": {
      const retryCount = Math.floor(req.wait_ms / RETRY_DELAY_MS);
      try {
        const lock = await redlock.acquire([req.key], req.ttl_ms, { retryCount });
        locks.set(lock.value, lock);
        return { acquired: true, lease: lock.value, valid_ms: lock.expiration - Date.now() };
      } catch (e) {
        if (await definitelyRefused(e)) return { acquired: false };
        throw e;
      }
    }
    case "release": {
      const lock = locks.get(req.lease);
      if (!lock) return { error: "unknown lease" };
      try {
        await lock.release();
        locks.delete(req.lease);
        return { released: true };
      } catch (e) {
        if (!(await definitelyRefused(e))) throw e;
        locks.delete(req.lease);
        return { released: false };
      }
    }
    case "extend": {
      const lock = locks.get(req.lease);
      if (!lock) return { error: "unknown lease" };
      try {
        const extended = await lock.extend(req.ttl_ms);
        locks.set(req.lease, extended);
        return { extended: true, valid_ms: extended.expiration - Date.now() };
      } catch (e) {
        if (await definitelyRefused(e)) return { extended: false };
        throw e;
      }
    }
    default:
      return { error: `unknown op ${req.op}` };
  }
}

process.on("unhandledRejection", (e) => console.error("unhandled rejection:", e));

(async () => {
  const rl = readline.createInterface({ input: process.stdin, terminal: false });
  for await (const line of rl) { // one request at a time; EOF ends the loop
    if (!line.trim()) continue;
    const req = JSON.parse(line);
    let resp;
    try {
      resp = await handle(req);
    } catch (e) {
      resp = { error: `${e.name}: ${e.message}` }; // outcome unknown
    }
    process.stdout.write(JSON.stringify({ id: req.id, ...resp }) + "\n");
  }
  for (const c of clients) c.disconnect();
  process.exit(0);
})();
