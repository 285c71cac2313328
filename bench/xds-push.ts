// xDS push cost, next to its peers in the same run:
// 1. encoding one response per stream from the cache's pre-encoded resources, against a server
//    that encodes every resource for every stream (protobufjs fromObject + encode);
// 2. one changed cluster out of N pushed to S streams over gRPC: Delta (sends 1) against SotW
//    (Cluster is full state: sends N).
// Run: node --import tsx bench/xds-push.ts   (BENCH_N resources, BENCH_S streams)
import { Client, credentials, Metadata } from "@grpc/grpc-js";
import { Snapshot } from "../xds/cache/snapshot.js";
import { SnapshotCache } from "../xds/cache/snapshot-cache.js";
import {
  ADS_PATHS,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
} from "../xds/internal.js";
import type { Node } from "../xds/node.js";
import { messageType } from "../xds/protos.js";
import { edsCluster } from "../xds/resources/cluster.js";
import { AdsServer } from "../xds/server/ads-server.js";
import { TYPE_URL } from "../xds/type-urls.js";

const N = Number(process.env.BENCH_N ?? 1000);
const S = Number(process.env.BENCH_S ?? 20);

function clusterObject(i: number, timeoutMs: number): Record<string, unknown> {
  return {
    name: `c${i}`,
    type: "EDS",
    eds_cluster_config: { service_name: `c${i}`, eds_config: { ads: {}, resource_api_version: "V3" } },
    connect_timeout: { seconds: Math.floor(timeoutMs / 1000), nanos: 0 },
    lb_policy: "ROUND_ROBIN",
  };
}

function snapshot(changed: number): Snapshot {
  return Snapshot.from(
    Array.from({ length: N }, (_, i) =>
      edsCluster({ name: `c${i}`, connectTimeoutMs: i === changed ? 7000 : 5000 }),
    ),
  );
}

function encodeBench(): void {
  const snap = snapshot(-1);
  const resources = [...snap.resources(TYPE_URL.cluster).values()];
  const Response = messageType("envoy.service.discovery.v3.DiscoveryResponse");
  const objects = Array.from({ length: N }, (_, i) => ({
    "@type": TYPE_URL.cluster,
    ...clusterObject(i, 5000),
  }));
  let t = performance.now();
  let bytes = 0;
  for (let s = 0; s < S; s++) {
    bytes += encodeDiscoveryResponse({
      versionInfo: "v",
      typeUrl: TYPE_URL.cluster,
      nonce: String(s),
      resources,
    }).length;
  }
  const shared = performance.now() - t;
  t = performance.now();
  let peerBytes = 0;
  for (let s = 0; s < S; s++) {
    const msg = Response.fromObject({
      version_info: "v",
      type_url: TYPE_URL.cluster,
      nonce: String(s),
      resources: objects,
    });
    peerBytes += Response.encode(msg).finish().length;
  }
  const peer = performance.now() - t;
  console.log(`encode ${S} responses of ${N} clusters:`);
  console.log(
    `  pre-encoded (xds/)       ${shared.toFixed(1)} ms  ${(bytes / S / 1024).toFixed(0)} KiB each`,
  );
  console.log(
    `  encode per stream (peer) ${peer.toFixed(1)} ms  ${(peerBytes / S / 1024).toFixed(0)} KiB each  (${(peer / shared).toFixed(1)}x)`,
  );
}

async function pushBench(mode: "delta" | "sotw"): Promise<number> {
  const cache = new SnapshotCache({ debounceMs: 0 });
  const server = new AdsServer({ cache });
  const port = await server.listen("127.0.0.1:0");
  const client = new Client(`127.0.0.1:${port}`, credentials.createInsecure());
  const node: Node = { id: "bench", cluster: "bench", metadata: {} };
  cache.setSnapshot(node.id, snapshot(-1));
  const waiters: (() => void)[] = [];
  const streams: { cancel(): void }[] = [];
  let received = 0;
  const onResponse = () => {
    received++;
    waiters.shift()?.();
  };
  const initial = new Promise<void>((resolve) => {
    let n = 0;
    waiters.push(...Array.from({ length: S }, () => () => ++n === S && resolve()));
  });
  for (let s = 0; s < S; s++) {
    if (mode === "delta") {
      const call = client.makeBidiStreamRequest(
        ADS_PATHS.delta,
        encodeDeltaDiscoveryRequest,
        decodeDeltaDiscoveryResponse,
        new Metadata(),
      );
      call.on("data", onResponse);
      call.on("error", () => {});
      call.write({
        node,
        typeUrl: TYPE_URL.cluster,
        resourceNamesSubscribe: ["*"],
        resourceNamesUnsubscribe: [],
        initialResourceVersions: {},
        responseNonce: "",
      });
      streams.push(call);
    } else {
      const call = client.makeBidiStreamRequest(
        ADS_PATHS.sotw,
        encodeDiscoveryRequest,
        decodeDiscoveryResponse,
        new Metadata(),
      );
      call.on("data", onResponse);
      call.on("error", () => {});
      call.write({
        node,
        typeUrl: TYPE_URL.cluster,
        versionInfo: "",
        resourceNames: [],
        responseNonce: "",
      });
      streams.push(call);
    }
  }
  await initial;
  const next = snapshot(N - 1);
  const done = new Promise<void>((resolve) => {
    let n = 0;
    waiters.push(...Array.from({ length: S }, () => () => ++n === S && resolve()));
  });
  const t = performance.now();
  cache.setSnapshot(node.id, next);
  await done;
  const ms = performance.now() - t;
  for (const s of streams) s.cancel();
  client.close();
  await server.close();
  if (received !== 2 * S) throw new Error(`expected ${2 * S} responses, got ${received}`);
  return ms;
}

async function main(): Promise<void> {
  encodeBench();
  const delta = await pushBench("delta");
  const sotw = await pushBench("sotw");
  console.log(`push 1 changed cluster of ${N} to ${S} streams over gRPC:`);
  console.log(`  delta ${delta.toFixed(1)} ms`);
  console.log(`  sotw  ${sotw.toFixed(1)} ms (full state: ${N} clusters per stream)`);
}

await main();
