// Child process of bench/xds-scale.ts: simulated ADS clients, each on its own HTTP/2 connection
// (a local subchannel pool per client, as separate sidecars would have), speaking the wire through
// xds/internal.ts's codec. Every response is ACKed at once; per client and type it records what
// arrived since the last mark (bytes as read off the stream, first receive and ACK times).
import { Client, type ClientDuplexStream, credentials, Metadata } from "@grpc/grpc-js";
import {
  ADS_PATHS,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDiscoveryRequest,
} from "../xds/internal.js";
import type { Node } from "../xds/node.js";
import {
  type ClientReport,
  type ClientSpec,
  type FromClients,
  nowMs,
  type ToClients,
  type TypeStats,
} from "./xds-scale-ipc.js";

const identity = (b: Buffer): Buffer => b;

function send(msg: FromClients): void {
  process.send?.(msg);
}

function emptyStats(): TypeStats {
  return { messages: 0, bytes: 0, resources: 0, removed: 0, firstRecv: 0, firstAck: 0 };
}

class SimClient {
  readonly spec: ClientSpec;
  readonly #grpc: Client;
  readonly #call: ClientDuplexStream<Buffer, Buffer>;
  readonly #node: Node;
  readonly #namesByType = new Map<string, string[]>();
  readonly #answered = new Set<string>();
  #stats = new Map<string, TypeStats>();
  #closing = false;
  errors: string[] = [];
  /** Satisfied the current mark's wait condition. */
  satisfied = false;
  onInitial: (() => void) | undefined;

  constructor(
    addr: string,
    spec: ClientSpec,
    readonly onMessage: (client: SimClient) => void,
  ) {
    this.spec = spec;
    this.#node = { id: spec.id, cluster: "bench-reader", metadata: { bench: "xds-scale" } };
    // A local subchannel pool: this client's own TCP connection, not one shared by the process.
    this.#grpc = new Client(addr, credentials.createInsecure(), {
      "grpc.use_local_subchannel_pool": 1,
      "grpc.max_receive_message_length": -1,
    });
    const path = spec.mode === "delta" ? ADS_PATHS.delta : ADS_PATHS.sotw;
    this.#call = this.#grpc.makeBidiStreamRequest(path, identity, identity, new Metadata());
    this.#call.on("data", (buf: Buffer) => this.#onData(buf));
    this.#call.on("error", (err: Error) => {
      if (!this.#closing) this.errors.push(`stream error: ${err.message}`);
    });
    this.#call.on("end", () => {
      if (!this.#closing) this.errors.push("stream ended by the server");
    });
    spec.subs.forEach((sub, i) => {
      const names = sub.names === "*" ? ["*"] : sub.names;
      this.#namesByType.set(sub.typeUrl, names);
      const node = i === 0 ? this.#node : undefined;
      this.#call.write(
        spec.mode === "delta"
          ? encodeDeltaDiscoveryRequest({
              ...(node ? { node } : {}),
              typeUrl: sub.typeUrl,
              resourceNamesSubscribe: names,
              resourceNamesUnsubscribe: [],
              initialResourceVersions: {},
              responseNonce: "",
            })
          : encodeDiscoveryRequest({
              ...(node ? { node } : {}),
              versionInfo: "",
              resourceNames: names,
              typeUrl: sub.typeUrl,
              responseNonce: "",
            }),
      );
    });
  }

  get initialDone(): boolean {
    return this.#answered.size >= this.spec.subs.length;
  }

  resetStats(): void {
    this.#stats = new Map();
    this.satisfied = false;
  }

  has(typeUrl: string): boolean {
    return (this.#stats.get(typeUrl)?.messages ?? 0) > 0;
  }

  report(): ClientReport {
    return {
      id: this.spec.id,
      mode: this.spec.mode,
      wildcard: this.spec.subs.every((s) => s.names === "*"),
      types: Object.fromEntries(this.#stats),
      errors: this.errors,
    };
  }

  close(): void {
    this.#closing = true;
    this.#call.cancel();
    this.#grpc.close();
  }

  #onData(buf: Buffer): void {
    const recv = nowMs();
    let typeUrl: string;
    let resources: number;
    let removed = 0;
    if (this.spec.mode === "delta") {
      const d = decodeDeltaDiscoveryResponse(buf);
      if (!d.ok) {
        this.errors.push(d.error);
        return;
      }
      typeUrl = d.value.typeUrl;
      resources = d.value.resources.length;
      removed = d.value.removedResources.length;
      this.#call.write(
        encodeDeltaDiscoveryRequest({
          typeUrl,
          resourceNamesSubscribe: [],
          resourceNamesUnsubscribe: [],
          initialResourceVersions: {},
          responseNonce: d.value.nonce,
        }),
      );
    } else {
      const d = decodeDiscoveryResponse(buf);
      if (!d.ok) {
        this.errors.push(d.error);
        return;
      }
      typeUrl = d.value.typeUrl;
      resources = d.value.resources.length;
      this.#call.write(
        encodeDiscoveryRequest({
          versionInfo: d.value.versionInfo,
          resourceNames: this.#namesByType.get(typeUrl) ?? [],
          typeUrl,
          responseNonce: d.value.nonce,
        }),
      );
    }
    const ack = nowMs();
    let st = this.#stats.get(typeUrl);
    if (!st) {
      st = emptyStats();
      this.#stats.set(typeUrl, st);
    }
    if (st.messages === 0) {
      st.firstRecv = recv;
      st.firstAck = ack;
    }
    st.messages++;
    st.bytes += buf.length;
    st.resources += resources;
    st.removed += removed;
    this.#answered.add(typeUrl);
    if (this.onInitial && this.initialDone) {
      const cb = this.onInitial;
      this.onInitial = undefined;
      cb();
    }
    this.onMessage(this);
  }
}

let clients: SimClient[] = [];
let waitTypes: string[] | undefined;
let unsatisfied = 0;

function onMessage(c: SimClient): void {
  if (!waitTypes || c.satisfied) return;
  for (const t of waitTypes) if (!c.has(t)) return;
  c.satisfied = true;
  unsatisfied--;
  if (unsatisfied === 0) {
    waitTypes = undefined;
    send({ ev: "done", at: nowMs() });
  }
}

async function connect(addr: string, specs: ClientSpec[], batch: number): Promise<void> {
  const t = nowMs();
  for (let i = 0; i < specs.length; i += batch) {
    const group = specs.slice(i, i + batch).map((spec) => new SimClient(addr, spec, onMessage));
    clients.push(...group);
    await Promise.all(
      group.map(
        (c) =>
          new Promise<void>((resolve, reject) => {
            if (c.initialDone) return resolve();
            const timer = setTimeout(
              () => reject(new Error(`${c.spec.id}: no initial response in 60 s (${c.errors.join("; ")})`)),
              60_000,
            );
            c.onInitial = () => {
              clearTimeout(timer);
              resolve();
            };
          }),
      ),
    );
  }
  send({ ev: "connected", ms: nowMs() - t });
}

process.on("message", (msg: ToClients) => {
  switch (msg.cmd) {
    case "connect":
      connect(msg.addr, msg.clients, msg.batch).catch((err: unknown) =>
        send({ ev: "failed", error: String(err) }),
      );
      break;
    case "mark":
      for (const c of clients) c.resetStats();
      waitTypes = msg.waitTypes;
      unsatisfied = clients.length;
      send({ ev: "marked" });
      break;
    case "collect":
      send({ ev: "collected", reports: clients.map((c) => c.report()) });
      break;
    case "disconnect":
      waitTypes = undefined;
      for (const c of clients) c.close();
      clients = [];
      send({ ev: "disconnected" });
      break;
  }
});

// The parent went away: nothing left to do.
process.on("disconnect", () => {
  for (const c of clients) c.close();
  process.exit(0);
});

send({ ev: "ready" });
