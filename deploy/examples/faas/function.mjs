#!/usr/bin/env node
// A FaaS-style workload: serve HTTP on its own address, register with the mesh when it starts,
// renew while it runs, leave when it exits (a signal, or LIFETIME_MS running out: scale to zero).
// No dependencies: Node 20's fetch and http.
//   CATENA_SERVER=http://127.0.0.1:7070 node deploy/examples/faas/function.mjs
import { createServer } from "node:http";

const server = process.env.CATENA_SERVER ?? "http://127.0.0.1:7070";
const service = process.env.SERVICE ?? "thumbnailer";
const address = process.env.ADDRESS ?? `127.70.0.${10 + Math.floor(Math.random() * 240)}`;
const port = Number(process.env.PORT ?? 8080);
const ttlSeconds = Number(process.env.TTL ?? 10);
const lifetimeMs = process.env.LIFETIME_MS ? Number(process.env.LIFETIME_MS) : undefined;
const endpoints = `${server}/v1/services/${service}/endpoints`;

const http = createServer((req, res) => {
  res.setHeader("content-type", "text/plain");
  res.end(`thumbnail of ${req.url} by ${service} at ${address}:${port} (pid ${process.pid})\n`);
});
await new Promise((resolve, reject) => http.listen(port, address, resolve).once("error", reject));

async function register() {
  const res = await fetch(endpoints, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({
      address,
      port,
      ttlSeconds,
      labels: { kind: "function", pid: String(process.pid) },
    }),
  });
  if (!res.ok) throw new Error(`registration refused: ${res.status} ${await res.text()}`);
  return (await res.json()).id;
}

let id = await register();
console.log(`serving on ${address}:${port}, registered in ${service} as ${id}`);

// Renew at a third of the TTL; a registration that expired (server restarted, pause) is made again.
const heartbeat = setInterval(
  async () => {
    try {
      const res = await fetch(`${endpoints}/${id}`, { method: "PUT" });
      if (res.status === 404) id = await register();
    } catch (err) {
      console.error(`renewal failed: ${err.message}`);
    }
  },
  (ttlSeconds * 1000) / 3,
);

let leaving = false;
async function leave(why) {
  if (leaving) return;
  leaving = true;
  clearInterval(heartbeat);
  // Out of the mesh first, so no new connection is sent here; then finish the open ones.
  await fetch(`${endpoints}/${id}`, { method: "DELETE" }).catch(() => undefined);
  console.log(`deregistered ${id} (${why})`);
  http.close(() => process.exit(0));
  http.closeIdleConnections();
}
process.once("SIGINT", () => leave("SIGINT"));
process.once("SIGTERM", () => leave("SIGTERM"));
if (lifetimeMs !== undefined) setTimeout(() => leave("lifetime over"), lifetimeMs);
