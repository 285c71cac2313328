// The control server's HTTP API against a real NATS: atomic apply, optimistic concurrency,
// located errors, events for every change.
import { readFileSync } from "node:fs";
import { connect, type NatsConnection, type Subscription } from "@nats-io/transport-node";
import { CloudEvent } from "cloudevents";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { getJson, post, startTestControl, type TestControl } from "../support/control.js";
import { SHARED_NATS_URL } from "../support/nats.js";

const EXAMPLE = readFileSync(new URL("../../deploy/examples/edge-chain/chain.yaml", import.meta.url), "utf8");

let control: TestControl;
let nc: NatsConnection;

beforeAll(async () => {
  control = await startTestControl();
  nc = await connect({ servers: SHARED_NATS_URL });
});

afterAll(async () => {
  await nc?.close();
  await control?.stop();
});

function network(name: string, cidr: string, extra: Record<string, unknown> = {}) {
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind: "Network",
    metadata: { name, ...extra },
    spec: { cidr },
  };
}

/** Collects CloudEvents from a plain NATS subscription. */
function collect(sub: Subscription) {
  const events: { subject: string; event: CloudEvent<unknown>; contentType: string | undefined }[] = [];
  void (async () => {
    for await (const m of sub) {
      events.push({
        subject: m.subject,
        event: new CloudEvent(JSON.parse(m.string())),
        contentType: m.headers?.get("content-type"),
      });
    }
  })();
  return events;
}

async function until(check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("condition not met in time");
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe("control API", () => {
  it("applies the design's example manifest and lists it", async () => {
    const res = await post(control.url, "/v1/apply", EXAMPLE);
    expect(res.status).toBe(200);
    const items = (res.body as { items: { action: string }[] }).items;
    expect(items.map((i) => i.action)).toEqual(Array(6).fill("created"));
    const list = await getJson(control.url, "/v1/servicefunctions");
    const names = (list.body as { items: { metadata: { name: string } }[] }).items.map(
      (o) => o.metadata.name,
    );
    expect(names).toEqual(["edge-fw", "edge-lb", "edge-qos"]);
    const again = await post(control.url, "/v1/apply", EXAMPLE);
    expect((again.body as { items: { action: string }[] }).items.every((i) => i.action === "unchanged")).toBe(
      true,
    );
  });

  it("rejects a request with one bad document and changes nothing, publishing nothing", async () => {
    const sub = nc.subscribe(`${control.root}.events.>`);
    const events = collect(sub);
    const before = await getJson(control.url, "/v1/networks");
    const docs = [
      network("a1", "10.1.0.0/16"),
      network("a2", "10.2.0.0/16"),
      network("a3", "10.3.0.0/16"),
      network("a4", "10.4.0.0/16"),
      network("a5", "10.5.0.0/16"),
      network("bad", "10.6.0.1/33"),
    ];
    const res = await post(control.url, "/v1/apply", { items: docs });
    expect(res.status).toBe(400);
    const error = (res.body as { error: { details: { document: number; path: string }[] } }).error;
    expect(error.details).toContainEqual(expect.objectContaining({ document: 5, path: "spec.cidr" }));
    expect(await getJson(control.url, "/v1/networks")).toEqual(before);
    // A sentinel apply afterwards: once its event is in, nothing of the rejected request came before it.
    expect((await post(control.url, "/v1/apply", network("sentinel", "10.9.0.0/16"))).status).toBe(200);
    await until(() => events.some((e) => e.subject === `${control.root}.events.network.sentinel.created`));
    expect(events.filter((e) => /\.network\.(a\d|bad)\./.test(e.subject))).toEqual([]);
    sub.unsubscribe();
  });

  it("points YAML errors at line and column", async () => {
    const yaml = [
      "apiVersion: catena.dev/v1alpha1",
      "kind: ServiceChain",
      "metadata: {name: broken}",
      "spec:",
      "  service: web",
      "  ingress: {port: 8080}",
      "  hops:",
      "    - function: edge-fw",
      "    - function: edge-qoss",
    ].join("\n");
    const res = await post(control.url, "/v1/apply", yaml);
    expect(res.status).toBe(400);
    const details = (res.body as { error: { details: Record<string, unknown>[] } }).error.details;
    expect(details).toContainEqual(
      expect.objectContaining({
        path: "spec.hops[1].function",
        message: 'ServiceFunction "edge-qoss" does not exist',
        line: 9,
        column: 17,
      }),
    );
  });

  it("lets exactly one of two updates with the same resourceVersion win", async () => {
    expect((await post(control.url, "/v1/apply", network("race", "10.20.0.0/16"))).status).toBe(200);
    // Status is written right after the create (and bumps resourceVersion): read once it settled.
    let rv: string | undefined;
    const deadline = Date.now() + 5000;
    for (;;) {
      const res = await getJson(control.url, "/v1/networks/race");
      const object = res.body as {
        metadata: { resourceVersion: string; generation: number };
        status?: { observedGeneration?: number };
      };
      if (object.status?.observedGeneration === object.metadata.generation) {
        rv = object.metadata.resourceVersion;
        break;
      }
      if (Date.now() > deadline) throw new Error("status never observed");
      await new Promise((r) => setTimeout(r, 20));
    }
    const update = (label: string) =>
      post(
        control.url,
        "/v1/apply",
        network("race", "10.20.0.0/16", { resourceVersion: rv, labels: { by: label } }),
      );
    const results = await Promise.all([update("one"), update("two")]);
    expect(results.map((r) => r.status).sort()).toEqual([200, 409]);
  });

  it("publishes CloudEvents for create, update and delete, in order, with the structured content type", async () => {
    const sub = nc.subscribe(`${control.root}.events.network.ordered.*`);
    const events = collect(sub);
    expect((await post(control.url, "/v1/apply", network("ordered", "10.30.0.0/16"))).status).toBe(200);
    expect(
      (await post(control.url, "/v1/apply", network("ordered", "10.30.0.0/16", { labels: { v: "2" } })))
        .status,
    ).toBe(200);
    const del = await fetch(new URL("/v1/networks/ordered", control.url), { method: "DELETE" });
    expect(del.status).toBe(200);
    await until(() => events.filter((e) => !e.subject.endsWith(".ready")).length >= 3);
    const verbs = events.map((e) => e.subject.split(".").pop()).filter((v) => v !== "ready");
    expect(verbs.slice(0, 3)).toEqual(["created", "updated", "deleted"]);
    for (const e of events) {
      expect(e.contentType).toBe("application/cloudevents+json");
      expect(e.event.type).toMatch(/^dev\.catena\.network\./);
      expect(e.event.subject).toBe("ordered");
    }
    sub.unsubscribe();
  });

  it("answers health, readiness, metrics and a 404 for a missing object", async () => {
    expect((await getJson(control.url, "/healthz")).status).toBe(200);
    expect((await getJson(control.url, "/readyz")).status).toBe(200);
    const metrics = await (await fetch(new URL("/metrics", control.url))).text();
    expect(metrics).toContain("catena_api_requests");
    const missing = await getJson(control.url, "/v1/servicechains/nope");
    expect(missing.status).toBe(404);
    expect(JSON.stringify(missing.body)).toContain("not found");
  });

  it("rejects unknown fields, bodies over 4 MiB and bad label selectors with 4xx", async () => {
    const unknown = await post(control.url, "/v1/apply", { ...network("x", "10.40.0.0/16"), extra: 1 });
    expect(unknown.status).toBe(400);
    expect(JSON.stringify(unknown.body)).toContain('unknown field \\"extra\\"');
    const big = await post(control.url, "/v1/apply", "#".repeat(4 * 1024 * 1024 + 10));
    expect(big.status).toBe(413);
    const selector = await getJson(control.url, "/v1/networks?labelSelector=%3D%3D");
    expect(selector.status).toBe(400);
  });

  it("streams events as Server-Sent Events with the same filters", async () => {
    const abort = new AbortController();
    const res = await fetch(new URL("/v1/events?kind=network&name=sse-net", control.url), {
      headers: { accept: "text/event-stream" },
      signal: abort.signal,
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = (res.body as ReadableStream<Uint8Array>).getReader();
    expect((await post(control.url, "/v1/apply", network("sse-other", "10.61.0.0/16"))).status).toBe(200);
    expect((await post(control.url, "/v1/apply", network("sse-net", "10.60.0.0/16"))).status).toBe(200);
    let text = "";
    const decoder = new TextDecoder();
    while (!text.includes("data: ")) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value);
    }
    abort.abort();
    const data = text
      .split("\n")
      .filter((l) => l.startsWith("data: "))
      .map((l) => JSON.parse(l.slice(6)) as { type: string; subject: string });
    expect(data[0]).toMatchObject({ type: "dev.catena.network.created", subject: "sse-net" });
    expect(data.every((e) => e.subject === "sse-net")).toBe(true);
  });

  it("filters lists by label selector", async () => {
    await post(control.url, "/v1/apply", {
      items: [
        network("lbl-a", "10.50.0.0/16", { labels: { tier: "front" } }),
        network("lbl-b", "10.51.0.0/16", { labels: { tier: "back" } }),
      ],
    });
    const res = await getJson(control.url, "/v1/networks?labelSelector=tier%3Dfront");
    const names = (res.body as { items: { metadata: { name: string } }[] }).items.map((o) => o.metadata.name);
    expect(names).toEqual(["lbl-a"]);
  });
});
