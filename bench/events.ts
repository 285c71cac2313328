// Event publisher throughput against raw nats.js, in the same run, on the machine's NATS.
//   node --import tsx bench/events.ts [events=50000] [rounds=3]
// Each mode publishes the same N CloudEvents (about 1 KiB each, a store change with its object) into
// its own JetStream stream under a unique root, and is timed until every event is stored:
//   publisher  createEventPublisher over the NATS bus: emit all, then flush()
//   raw core   nc.publish with the same headers, then nc.flush() (no acknowledgements)
//   raw js     js.publish with msgID, pipelined with the same window as the publisher
//   raw async  the leanest acked JetStream publish nats.js allows (what the NATS bus does, no publisher):
//              PUB with a reply on one wildcard inbox and a Nats-Msg-Id, same window; the floor for
//              "stored and acknowledged", to tell JetStream's cost from the publisher's
// Raw modes get their payloads pre-encoded; the publisher builds and encodes each CloudEvent itself,
// so the time that encoding takes alone is printed too (`encode only`), for context.
import { type JetStreamManager, jetstream, jetstreamManager } from "@nats-io/jetstream";
import { connect, createInbox, headers, type NatsConnection } from "@nats-io/transport-node";
import { toCloudEvent } from "../services/control/events/cloudevent.js";
import { createNatsBus } from "../services/control/events/nats-bus.js";
import { createEventPublisher } from "../services/control/events/publisher.js";
import { eventSubject, streamName } from "../services/control/events/subject.js";
import type { CatenaEvent } from "../services/control/events/types.js";
import { SHARED_NATS_URL, uniqueRoot } from "../test/support/nats.js";

const N = Number(process.argv[2] ?? 50_000);
const ROUNDS = Number(process.argv[3] ?? 3);
const WINDOW = 1024;
const SOURCE = "catena/control";

function change(i: number): CatenaEvent {
  const name = `web-edge-${i % 50}`;
  return {
    kind: "servicechain",
    name,
    verb: "updated",
    id: `ServiceChain/${name}/${i}/updated`,
    data: {
      revision: i,
      change: "updated",
      object: {
        apiVersion: "catena.dev/v1alpha1",
        kind: "ServiceChain",
        metadata: {
          name,
          labels: { app: "web", tier: "edge" },
          resourceVersion: String(i),
          generation: 3,
          creationTimestamp: "2026-11-27T23:15:47.123Z",
        },
        spec: {
          service: "web",
          ingress: { port: 8080 },
          placement: "separate",
          hops: [
            {
              function: "edge-fw",
              config: { defaultAction: "deny", allow: [{ from: [{ cidr: "127.0.0.0/8" }], ports: [8080] }] },
            },
            {
              function: "edge-qos",
              config: {
                connectionsPerSecond: 200,
                maxConnections: 1000,
                bandwidth: { bytesPerSecond: 10485760, burstBytes: 1048576 },
              },
            },
            {
              function: "edge-lb",
              config: {
                policy: "round_robin",
                healthCheck: { intervalMs: 1000, timeoutMs: 500, unhealthyThreshold: 2, healthyThreshold: 1 },
              },
            },
          ],
        },
        status: {
          observedGeneration: 3,
          ingress: { address: "127.64.0.10", port: 8080 },
          conditions: [
            {
              type: "Ready",
              status: "True",
              reason: "Programmed",
              message: "all hops acknowledged",
              lastTransitionTime: "2026-11-27T23:15:48.001Z",
            },
          ],
        },
      },
    },
  };
}

const events = Array.from({ length: N }, (_, i) => change(i));
const encoder = new TextEncoder();
const now = new Date();

interface Prepared {
  subjects: string[];
  payloads: Uint8Array[];
  ids: string[];
}

function prepare(root: string): Prepared {
  const subjects: string[] = [];
  const payloads: Uint8Array[] = [];
  const ids: string[] = [];
  for (const e of events) {
    const ce = toCloudEvent(e, SOURCE, now);
    subjects.push(eventSubject(root, e.kind, e.name, e.verb));
    payloads.push(encoder.encode(JSON.stringify(ce)));
    ids.push(ce.id);
  }
  return { subjects, payloads, ids };
}

async function createStream(jsm: JetStreamManager, root: string): Promise<void> {
  await jsm.streams.add({
    name: streamName(root),
    subjects: [`${root}.events.>`],
    duplicate_window: 120 * 1e9,
    max_bytes: 1024 ** 3,
  });
}

async function stored(jsm: JetStreamManager, root: string): Promise<number> {
  return (await jsm.streams.info(streamName(root))).state.messages;
}

async function runPublisher(root: string): Promise<number> {
  const bus = createNatsBus({ servers: SHARED_NATS_URL, root, maxInFlight: WINDOW });
  await bus.ready();
  const publisher = createEventPublisher({ bus, root, source: SOURCE, bufferSize: N, maxInFlight: WINDOW });
  const t0 = performance.now();
  for (const e of events) publisher.emit(e);
  await publisher.flush(120_000);
  const ms = performance.now() - t0;
  const s = publisher.stats();
  if (s.published !== N || s.dropped !== 0) throw new Error(`publisher stats off: ${JSON.stringify(s)}`);
  await publisher.close();
  await bus.close();
  return ms;
}

async function runCore(nc: NatsConnection, jsm: JetStreamManager, root: string): Promise<number> {
  await createStream(jsm, root);
  const p = prepare(root);
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    const h = headers();
    h.set("content-type", "application/cloudevents+json");
    h.set("Nats-Msg-Id", p.ids[i] as string);
    nc.publish(p.subjects[i] as string, p.payloads[i], { headers: h });
  }
  await nc.flush();
  return performance.now() - t0;
}

async function runJs(nc: NatsConnection, jsm: JetStreamManager, root: string): Promise<number> {
  await createStream(jsm, root);
  const js = jetstream(nc);
  const p = prepare(root);
  // Best effort for raw nats.js: refill the window in bursts as acks settle, rather than awaiting
  // each oldest publish in turn (which costs a socket write per message).
  let settled = 0;
  let wake: (() => void) | undefined;
  const settle = () => {
    settled++;
    const w = wake;
    wake = undefined;
    w?.();
  };
  const fail = (err: unknown) => {
    throw err;
  };
  const t0 = performance.now();
  for (let i = 0; i < N; i++) {
    while (i - settled >= WINDOW) await new Promise<void>((r) => (wake = r));
    const h = headers();
    h.set("content-type", "application/cloudevents+json");
    js.publish(p.subjects[i] as string, p.payloads[i], { msgID: p.ids[i] as string, headers: h }).then(
      settle,
      fail,
    );
  }
  while (settled < N) await new Promise<void>((r) => (wake = r));
  return performance.now() - t0;
}

async function runAsync(nc: NatsConnection, jsm: JetStreamManager, root: string): Promise<number> {
  await createStream(jsm, root);
  const p = prepare(root);
  const inbox = `${createInbox()}.`;
  let sent = 0;
  let acked = 0;
  let finish = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const send = () => {
    while (sent < N && sent - acked < WINDOW) {
      const h = headers();
      h.set("content-type", "application/cloudevents+json");
      h.set("Nats-Msg-Id", p.ids[sent] as string);
      nc.publish(p.subjects[sent] as string, p.payloads[sent], { reply: inbox + sent, headers: h });
      sent++;
    }
  };
  const sub = nc.subscribe(`${inbox}*`, {
    callback: (_err, msg) => {
      if ((msg.json() as { error?: unknown }).error !== undefined) throw new Error(msg.string());
      if (++acked === N) finish();
      else send();
    },
  });
  await nc.flush();
  const t0 = performance.now();
  send();
  await finished;
  const ms = performance.now() - t0;
  sub.unsubscribe();
  return ms;
}

function runEncodeOnly(): number {
  const t0 = performance.now();
  let bytes = 0;
  for (const e of events) bytes += Buffer.from(JSON.stringify(toCloudEvent(e, SOURCE, new Date()))).length;
  if (bytes === 0) throw new Error("nothing encoded");
  return performance.now() - t0;
}

const MODES = ["publisher", "raw core", "raw js", "raw async"] as const;
type Mode = (typeof MODES)[number];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;

async function main(): Promise<void> {
  // No async stack traces: each js.publish would otherwise build two Error objects up front.
  const nc = await connect({ servers: SHARED_NATS_URL, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  const roots: string[] = [];
  const times: Record<Mode | "encode only", number[]> = {
    publisher: [],
    "raw core": [],
    "raw js": [],
    "raw async": [],
    "encode only": [],
  };
  const bytes = prepare("x").payloads.reduce((n, b) => n + b.length, 0) / N;
  console.log(
    `events: ${N} per run, ~${Math.round(bytes)} B each, window ${WINDOW}, ${ROUNDS} rounds, ${SHARED_NATS_URL}`,
  );
  try {
    for (let r = 0; r < ROUNDS; r++) {
      // Interleaved, so load from elsewhere on the machine falls on every mode alike.
      for (const mode of MODES) {
        const root = uniqueRoot();
        roots.push(root);
        const ms =
          mode === "publisher"
            ? await runPublisher(root)
            : mode === "raw core"
              ? await runCore(nc, jsm, root)
              : mode === "raw js"
                ? await runJs(nc, jsm, root)
                : await runAsync(nc, jsm, root);
        const count = await stored(jsm, root);
        if (count !== N) console.log(`  note: ${mode} round ${r + 1}: ${count} of ${N} stored`);
        times[mode].push(ms);
        await jsm.streams.delete(streamName(root)).catch(() => {});
      }
      times["encode only"].push(runEncodeOnly());
    }
  } finally {
    for (const root of roots) await jsm.streams.delete(streamName(root)).catch(() => {});
    await nc.close();
  }

  const rate = (mode: keyof typeof times) => N / (median(times[mode]) / 1000);
  const rows = ([...MODES, "encode only"] as const).map((mode) => ({
    mode,
    "events/s (median)": Math.round(rate(mode)),
    "runs (ms)": times[mode].map((t) => Math.round(t)).join(" / "),
  }));
  console.table(rows);
  console.log(`publisher / raw core: ${(rate("publisher") / rate("raw core")).toFixed(2)}`);
  console.log(`publisher / raw js:   ${(rate("publisher") / rate("raw js")).toFixed(2)}`);
  console.log(`publisher / raw async: ${(rate("publisher") / rate("raw async")).toFixed(2)}`);
  const coreWithEncoding = N / ((median(times["raw core"]) + median(times["encode only"])) / 1000);
  console.log(
    `publisher / (raw core + the encoding it skipped): ${(rate("publisher") / coreWithEncoding).toFixed(2)}`,
  );
}

await main();
