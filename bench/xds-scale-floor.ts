// Child process of bench/xds-scale.ts: the floor peer. A bare AdsServer over a SnapshotCache
// (xds/ only: no HTTP API, store, compiler run or events), holding the resources the control server
// compiles from the same Service documents (its own serviceEndpoints and serviceResources), in one
// shared snapshot every node reads; a push is setSnapshot directly.
import { ModelState } from "../services/control/compiler/model-state.js";
import { serviceEndpoints } from "../services/control/compiler/service-endpoints.js";
import { serviceResources } from "../services/control/compiler/service-resources.js";
import type { StoredResource } from "../services/control/model/resource.js";
import { InstanceRegistry } from "../services/control/registry/instances.js";
import { Snapshot, VersionedResource } from "../xds/cache/snapshot.js";
import { SnapshotCache } from "../xds/cache/snapshot-cache.js";
import { AdsServer } from "../xds/server/ads-server.js";
import { type FromFloor, nowMs, type ServiceDoc, type ToFloor } from "./xds-scale-ipc.js";

const KEY = "services";
const state = new ModelState();
const instances = new InstanceRegistry();

function send(msg: FromFloor): void {
  process.send?.(msg);
}

/** What the control server's compiler makes of one Service with no chain, workloads or registry. */
function compile(doc: ServiceDoc) {
  const service = doc as unknown as StoredResource;
  return serviceResources(doc.metadata.name, serviceEndpoints(service, state, instances));
}

// debounceMs 0: the fan-out itself, with no publication delay (the control server's is 50 ms).
const cache = new SnapshotCache({ debounceMs: 0, nodeKey: () => KEY });
const server = new AdsServer({ cache, controlPlaneId: "catena" });
const port = await server.listen("127.0.0.1:0");

process.on("message", (msg: ToFloor) => {
  try {
    switch (msg.cmd) {
      case "init":
        cache.setSnapshot(KEY, Snapshot.from(msg.services.flatMap(compile)));
        send({ ev: "ready" });
        break;
      case "push": {
        const start = nowMs();
        const current = cache.latestSnapshot(KEY) ?? Snapshot.empty();
        // Like the compiler, upsert only what changed (here: the ClusterLoadAssignment).
        const changed = compile(msg.service)
          .map((r) => new VersionedResource(r))
          .filter((r) => current.get(r.typeUrl, r.name)?.version !== r.version);
        cache.setSnapshot(KEY, current.update(changed));
        send({ ev: "pushed", start, published: nowMs() });
        break;
      }
      case "acks": {
        const connected = server.status.nodes().filter((n) => n.streams > 0);
        const acked = connected.filter((n) =>
          [...n.types.values()].every((t) => t.sentVersion !== undefined && t.ackedVersion === t.sentVersion),
        );
        send({ ev: "acks", connected: connected.length, acked: acked.length });
        break;
      }
    }
  } catch (err) {
    send({ ev: "failed", error: String(err) });
  }
});

process.on("disconnect", () => {
  server.destroy();
  process.exit(0);
});

process.on("SIGTERM", () => {
  server.destroy();
  process.exit(0);
});

send({ ev: "listening", port });
