// The control server's xDS side: the ADS server over the snapshot cache the compiler fills, node
// admission and instance registration, and what NACKs and connections become (events, and through
// the data path status, the conditions of chains and functions).
import type { Logger } from "pino";
import {
  AdsServer,
  type Node,
  SnapshotCache,
  type StatusReader,
  type Logger as XdsLogger,
} from "../../xds/index.js";
import { Compiler } from "./compiler/compiler.js";
import type { EventSink } from "./events/types.js";
import type { ServiceFunctionSpec } from "./model/index.js";
import { InstanceRegistry } from "./registry/instances.js";
import type { SharedInstances } from "./registry/shared-instances.js";
import { DataPathStatus } from "./status/datapath-status.js";
import type { StatusWriter } from "./status/status-writer.js";
import type { Store } from "./store/store.js";

export interface XdsControlOptions {
  store: Store;
  events: EventSink;
  status: StatusWriter;
  logger: Logger;
  /** Debounce of snapshot publication (ms): a burst of applies becomes one push. */
  debounceMs?: number;
  /** Instances shared with the other control servers on the bucket (`--store nats-kv`). */
  sharedInstances?: SharedInstances;
}

export interface XdsControl {
  compiler: Compiler;
  instances: InstanceRegistry;
  status: StatusReader;
  listen(addr: string): Promise<number>;
  close(): Promise<void>;
}

/** xds/ takes a message-first 4-method logger; pino takes fields first. */
function xdsLogger(logger: Logger): XdsLogger {
  return {
    debug: (msg, fields) => logger.debug(fields ?? {}, msg),
    info: (msg, fields) => logger.info(fields ?? {}, msg),
    warn: (msg, fields) => logger.warn(fields ?? {}, msg),
    error: (msg, fields) => logger.error(fields ?? {}, msg),
  };
}

export function createXdsControl(options: XdsControlOptions): XdsControl {
  const { store, events, status, logger } = options;
  let compiler: Compiler | undefined;
  let datapath: DataPathStatus | undefined;
  let adsServer: AdsServer | undefined;
  const instances = new InstanceRegistry({
    onChange: (instance, change, origin) => {
      // The server the instance is connected to tells; the others only compile it in.
      if (origin === "local") events.emit({ kind: "xds", name: instance.id, verb: change, data: instance });
      compiler?.schedule();
    },
    onStatus: () => datapath?.schedule(),
    ...(options.sharedInstances && { shared: options.sharedInstances }),
    localStatus: () => adsServer?.status,
  });
  const cache = new SnapshotCache({
    nodeKey: (node) => (compiler as Compiler).nodeKey(node),
    debounceMs: options.debounceMs ?? 50,
    // Under steady churn (registrations, health) a push must still go out often: registration to
    // DNS answer is bounded by this, not by a quiet moment that never comes.
    maxDelayMs: 100,
    logger: xdsLogger(logger),
  });
  compiler = new Compiler({ store, cache, instances, logger, onCompiled: () => datapath?.schedule() });
  const fnOf = (node: Node) => compiler?.state.get("ServiceFunction", node.cluster);

  const ads = new AdsServer({
    cache,
    logger: xdsLogger(logger),
    controlPlaneId: "catena",
    callbacks: {
      onStreamOpen: ({ node }) => {
        const admission = (compiler as Compiler).admit(node);
        const fn = fnOf(node);
        if (admission.ok && fn) {
          const meta = node.metadata;
          instances.streamOpened({
            id: node.id,
            function: node.cluster,
            type: (fn.spec as ServiceFunctionSpec).type,
            ...(typeof meta.address === "string" ? { address: meta.address } : {}),
            ...(typeof meta.admin === "string" ? { admin: meta.admin } : {}),
            ...(typeof meta.csr === "string" ? { csr: meta.csr } : {}),
          });
        }
        if (!admission.ok) logger.warn({ node: node.id, reason: admission.reason }, "xDS node refused");
        return admission;
      },
      onStreamClosed: ({ node }) => {
        instances.streamClosed(node.id);
        datapath?.schedule();
      },
      onNack: ({ node, typeUrl, version, errorDetail }) => {
        const message = errorDetail.message;
        logger.warn({ node: node.id, typeUrl, version, message }, "xDS NACK");
        events.emit({
          kind: "xds",
          name: node.id,
          verb: "nacked",
          data: { node: node.id, cluster: node.cluster, typeUrl, version, message },
        });
        instances.xdsChanged(node.id);
        if (fnOf(node)) datapath?.schedule();
      },
      onAck: ({ node }) => {
        instances.xdsChanged(node.id);
        if (fnOf(node)) datapath?.schedule();
      },
    },
  });
  adsServer = ads;
  const state = compiler.state;
  datapath = new DataPathStatus({
    writer: status,
    reader: instances.statusReader(ads.status),
    chains: () => (compiler as Compiler).chains(),
    current: (kind, name) => state.get(kind, name),
    functions: () => state.list("ServiceFunction"),
    instances: (fn) => instances.list(fn),
    logger,
  });
  const running = compiler.run();

  return {
    compiler,
    instances,
    status: ads.status,
    listen: (addr) => ads.listen(addr),
    async close() {
      compiler?.close();
      await datapath?.close();
      await ads.close();
      cache.close();
      await running.catch(() => undefined);
    },
  };
}
