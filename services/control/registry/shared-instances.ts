// Function instances shared by several control servers (`--store nats-kv`), in the bucket
// `<ROOT>_INSTANCES`:
//   server.<server id>  {startedAt}                               a heartbeat, put every renewMs
//   instance.<node id>  {server, instance, draining?, xds}       put when the instance connects,
//                                                               drains, or ACKs/NACKs; deleted when it leaves
// The lease is the server's, not each instance's: one put per server every renewMs keeps all of
// its instances alive, however many there are. A server whose heartbeat is older than ttlMs is
// dead: every server drops its instances from what it compiles at the next sweep (bounded by
// ttlMs + sweepMs after the last heartbeat) and deletes its keys (compare-and-swap on the revision
// seen, so an instance that failed over meanwhile, re-put by its new server, is not touched).
// nats-server 2.9 has no per-key TTL and a bucket's max_age expires entries without telling
// watchers, so liveness is judged here, by when each heartbeat was seen.
//
// `xds` carries what the instance holds per type (versions sent, ACKed, NACKed, each resource's
// version and state), so every server derives a chain's Programmed and Ready from the same data:
// the status table of the ADS server the instance happens to be connected to, as published here.
//
// A server that comes back (a NATS partition longer than ttlMs) finds its keys deleted: it re-puts
// its heartbeat at the next renewal and its instances as soon as it sees their deletion.
import { randomBytes } from "node:crypto";
import type { JetStreamManager } from "@nats-io/jetstream";
import type { KV } from "@nats-io/kv";
import type { NatsConnection } from "@nats-io/transport-node";
import type { NodeStatus, ResourceSyncState, StatusReader, TypeStatus } from "../../../xds/index.js";
import type { StoreLogger } from "../store/embedded-store.js";
import { KvCas } from "../store/kv-cas.js";
import { type BucketEntry, BucketWatch } from "../store/kv-watch.js";
import type { FunctionInstance } from "./instances.js";

/** One xDS type as the instance holds it: what the ADS status table says, in a compact form. */
export interface SharedTypeStatus {
  sent?: string;
  acked?: string;
  nacked?: string;
  /** The last NACK's message (while it stands). */
  error?: string;
  /** Resource name → [version, state]; left out for discovery instances (they hold every service). */
  resources?: Record<string, [string, ResourceSyncState]>;
}

export interface InstanceEntry {
  /** The control server the instance is connected to. */
  server: string;
  instance: FunctionInstance;
  draining?: true;
  xds?: Record<string, SharedTypeStatus>;
}

interface Held {
  value: InstanceEntry;
  revision: number;
  /** The entry's JSON without xds, and the xds part: what changed decides what to redo. */
  identity: string;
  xds: string;
}

/** What this server knows of one of its own instances. */
export interface LocalInstance {
  instance: FunctionInstance;
  draining: boolean;
}

export interface SharedInstancesOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  kv: KV;
  bucket: string;
  logger: StoreLogger;
  /** This server's id in the bucket; random by default. */
  serverId?: string;
  /** Heartbeat period. Default 2000. */
  renewMs?: number;
  /** A server not heard of for this long is dead. Default 8000. */
  ttlMs?: number;
  /** How often dead servers are looked for. Default 1000. */
  sweepMs?: number;
  /** Coalescing of an instance's ACK bursts into one put. Default 20. */
  publishDelayMs?: number;
}

export interface SharedInstancesBinding {
  /** The instance as connected here (undefined: not connected here). */
  local(id: string): LocalInstance | undefined;
  /** Every instance connected here. */
  localIds(): Iterable<string>;
  /** What the local ADS server knows the instance holds. */
  statusOf(id: string): NodeStatus | undefined;
  /** An instance connected to another server appeared, left, or started draining. */
  onRemote(instance: FunctionInstance, change: "connected" | "disconnected" | "draining"): void;
  /** What an instance holds changed (any server's instance, this one's too, as the bucket says). */
  onStatus(id: string): void;
}

const SERVER = "server.";
const INSTANCE = "instance.";
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** NATS KV key tokens: node ids outside them (dots are separators) go as base64url. */
function instanceKey(id: string): string {
  return /^[-_=A-Za-z0-9]+$/.test(id)
    ? `${INSTANCE}${id}`
    : `${INSTANCE}=${Buffer.from(id).toString("base64url")}`;
}

export class SharedInstances {
  readonly serverId: string;
  readonly #o: Required<Omit<SharedInstancesOptions, "serverId">>;
  readonly #cas: KvCas<InstanceEntry>;
  readonly #watch: BucketWatch;
  #binding: SharedInstancesBinding | undefined;
  #applied = 0;
  #ready = false;
  #readyAt = 0;
  #markReady: () => void = () => {};
  readonly #whenReady = new Promise<void>((r) => {
    this.#markReady = r;
  });
  /** Every entry in the bucket, whichever server put it. */
  readonly #entries = new Map<string, Held>();
  /** Servers heard of: when (local clock), and the revision of their heartbeat. */
  readonly #servers = new Map<string, { seenAt: number; revision: number }>();
  /** Instances of other live servers, as last reported to the binding. */
  readonly #visible = new Map<string, { instance: FunctionInstance; draining: boolean; identity: string }>();
  /** The revision this server last wrote for each of its instances. */
  readonly #own = new Map<string, number>();
  /** Instances of ours that another live server has put since (connected there too): not claimed back. */
  readonly #yielded = new Set<string>();
  readonly #publishing = new Map<string, Promise<void>>();
  readonly #publishTimers = new Map<string, NodeJS.Timeout>();
  readonly #nodes = new Map<string, { revision: number; node: NodeStatus }>();
  #renewTimer: NodeJS.Timeout | undefined;
  #sweepTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: SharedInstancesOptions) {
    this.serverId = options.serverId ?? `${process.pid}-${randomBytes(4).toString("hex")}`;
    this.#o = {
      renewMs: 2000,
      ttlMs: 8000,
      sweepMs: 1000,
      publishDelayMs: 20,
      ...options,
    };
    this.#cas = new KvCas<InstanceEntry>(options.kv);
    this.#watch = new BucketWatch({
      nc: options.nc,
      jsm: options.jsm,
      bucket: options.bucket,
      logger: options.logger,
      applied: () => this.#applied,
      onEntry: (entry, pending) => this.#onEntry(entry, pending),
    });
  }

  /** How long after its last heartbeat a dead server's instances are gone from every server. */
  get boundMs(): number {
    return this.#o.ttlMs + this.#o.sweepMs;
  }

  bind(binding: SharedInstancesBinding): void {
    this.#binding = binding;
  }

  /** Puts the heartbeat, loads the bucket (bounded wait), and starts renewing and sweeping. */
  async start(timeoutMs = 10_000): Promise<void> {
    await this.#heartbeat();
    const info = await this.#o.jsm.streams.info(`KV_${this.#o.bucket}`);
    await this.#watch.start(Date.now() + timeoutMs);
    // Our own heartbeat is in there: the initial load ends with the entry that has nothing pending.
    if (info.state.messages === 0) this.#setReady();
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      this.#whenReady,
      new Promise<void>((r) => {
        timer = setTimeout(r, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
    this.#setReady();
    this.#renewTimer = setInterval(() => void this.#renew(), this.#o.renewMs);
    this.#renewTimer.unref();
    this.#sweepTimer = setInterval(() => void this.#sweep(), this.#o.sweepMs);
    this.#sweepTimer.unref();
  }

  /** Instances connected to other live servers (draining ones included, flagged). */
  remote(): Iterable<{ instance: FunctionInstance; draining: boolean }> {
    return this.#visible.values();
  }

  /**
   * Writes (soon) what this server knows of one of its instances; withdraws it when gone. `claim`:
   * it has just connected here, so this server's word wins over another's.
   */
  publish(id: string, claim = false): void {
    if (claim) this.#yielded.delete(id);
    if (this.#closed || this.#publishTimers.has(id)) return;
    const timer = setTimeout(() => {
      this.#publishTimers.delete(id);
      this.#serial(id, () => this.#write(id));
    }, this.#o.publishDelayMs);
    this.#publishTimers.set(id, timer);
  }

  /** The instance left this server: its key goes, unless another server has put it since. */
  withdraw(id: string): void {
    clearTimeout(this.#publishTimers.get(id));
    this.#publishTimers.delete(id);
    this.#serial(id, () => this.#write(id));
  }

  /** Every server's view of what each instance holds, as the bucket says it. */
  readonly reader: StatusReader = {
    node: (id) => this.#node(id),
    nodes: () => [...this.#entries.keys()].flatMap((id) => this.#node(id) ?? []),
  };

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#renewTimer);
    clearInterval(this.#sweepTimer);
    for (const t of this.#publishTimers.values()) clearTimeout(t);
    this.#publishTimers.clear();
    await Promise.allSettled(this.#publishing.values());
    // Going away cleanly: our instances (they reconnect elsewhere) and heartbeat go now, not after ttlMs.
    const own = [...this.#own];
    this.#own.clear();
    await Promise.allSettled([
      ...own.map(([id, revision]) => this.#cas.delete(instanceKey(id), revision)),
      this.#o.kv.delete(`${SERVER}${this.serverId}`),
    ]);
    await this.#watch.close();
  }

  // --- writing ----------------------------------------------------------------------------------

  #serial(id: string, task: () => Promise<void>): void {
    const previous = this.#publishing.get(id) ?? Promise.resolve();
    const run = previous
      .then(task)
      .catch((err: unknown) =>
        this.#o.logger.warn("shared instances: write failed", { instance: id, error: String(err) }),
      );
    this.#publishing.set(id, run);
    void run.then(() => {
      if (this.#publishing.get(id) === run) this.#publishing.delete(id);
    });
  }

  async #write(id: string): Promise<void> {
    if (this.#closed) return;
    const key = instanceKey(id);
    const local = this.#binding?.local(id);
    const revision = this.#own.get(id);
    if (!local) {
      this.#own.delete(id);
      this.#yielded.delete(id);
      if (revision !== undefined) await this.#cas.delete(key, revision);
      return;
    }
    const value = this.#entryOf(local);
    if (revision !== undefined) {
      const next = await this.#cas.update(key, value, revision);
      if (next !== undefined) {
        this.#own.set(id, next);
        return;
      }
      // Another server put it since: the instance moved there (it is live there), or ours was
      // deleted as a dead server's; a live other owner keeps it.
      const current = await this.#cas.read(key);
      if (current && current.value.server !== this.serverId && this.#alive(current.value.server)) {
        this.#own.delete(id);
        this.#yielded.add(id);
        return;
      }
    } else if (this.#yielded.has(id)) {
      const held = this.#entries.get(id);
      if (held && held.value.server !== this.serverId && this.#alive(held.value.server)) return;
      this.#yielded.delete(id);
    }
    this.#own.set(id, await this.#o.kv.put(key, JSON.stringify(value)));
  }

  #entryOf(local: LocalInstance): InstanceEntry {
    const status = this.#binding?.statusOf(local.instance.id);
    const xds: Record<string, SharedTypeStatus> = {};
    const withResources = local.instance.type !== "discovery";
    for (const t of status?.types.values() ?? []) {
      const s: SharedTypeStatus = {};
      if (t.sentVersion !== undefined) s.sent = t.sentVersion;
      if (t.ackedVersion !== undefined) s.acked = t.ackedVersion;
      if (t.nackedVersion !== undefined) s.nacked = t.nackedVersion;
      if (t.errorDetail) s.error = t.errorDetail.message;
      if (withResources) {
        const resources: Record<string, [string, ResourceSyncState]> = {};
        for (const [name, r] of t.resources) resources[name] = [r.version, r.state];
        s.resources = resources;
      }
      xds[t.typeUrl] = s;
    }
    return {
      server: this.serverId,
      instance: local.instance,
      ...(local.draining ? { draining: true as const } : {}),
      xds,
    };
  }

  async #heartbeat(): Promise<void> {
    const value = JSON.stringify({ startedAt: new Date().toISOString() });
    await this.#o.kv.put(`${SERVER}${this.serverId}`, encoder.encode(value));
  }

  async #renew(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#heartbeat();
    } catch (err) {
      this.#o.logger.warn("shared instances: heartbeat failed", { error: String(err) });
      return;
    }
    // Instances of ours the bucket lacks (deleted while we were cut off, a write that failed, an
    // owner we yielded to that died).
    for (const id of this.#binding?.localIds() ?? []) {
      const held = this.#entries.get(id);
      const mine = held?.value.server === this.serverId && this.#own.get(id) === held.revision;
      if (!mine && !(held && this.#alive(held.value.server))) this.publish(id);
    }
  }

  // --- reading ----------------------------------------------------------------------------------

  /**
   * Whether this server has the smallest id among the live ones: the one replica that speaks for
   * what every replica observes alike (health transitions). A handover may repeat or miss one.
   */
  isLeader(): boolean {
    for (const server of this.#servers.keys())
      if (server < this.serverId && this.#alive(server)) return false;
    return true;
  }

  #alive(server: string): boolean {
    if (server === this.serverId) return true;
    const s = this.#servers.get(server);
    return s !== undefined && Date.now() - s.seenAt <= this.#o.ttlMs;
  }

  #setReady(): void {
    if (this.#ready) return;
    this.#ready = true;
    this.#readyAt = Date.now();
    this.#markReady();
    for (const id of this.#entries.keys()) this.#refresh(id);
  }

  #onEntry(entry: BucketEntry, pending: number | undefined): void {
    this.#applied = entry.revision;
    const now = Date.now();
    if (entry.key.startsWith(SERVER)) {
      const server = entry.key.slice(SERVER.length);
      const wasAlive = this.#alive(server);
      if (entry.op === "PUT") {
        // During the initial load, how old the heartbeat is (the NATS server's clock, never ahead of ours).
        const seenAt = this.#ready ? now : Math.min(now, entry.time);
        this.#servers.set(server, { seenAt, revision: entry.revision });
      } else {
        this.#servers.delete(server);
        // Declared dead while alive (a pause, a partition): say so again at once.
        if (server === this.serverId && !this.#closed) void this.#renew();
      }
      if (this.#ready && wasAlive !== this.#alive(server)) this.#refreshServer(server);
    } else if (entry.key.startsWith(INSTANCE)) {
      const before = this.#entries.get(this.#idOf(entry));
      const id = this.#idOf(entry);
      if (entry.op === "PUT") {
        let value: InstanceEntry;
        try {
          value = JSON.parse(decoder.decode(entry.data)) as InstanceEntry;
        } catch {
          this.#o.logger.warn("shared instances: unreadable entry", { key: entry.key });
          return;
        }
        const { xds, ...rest } = value;
        const held: Held = {
          value,
          revision: entry.revision,
          identity: JSON.stringify(rest),
          xds: JSON.stringify(xds ?? {}),
        };
        this.#entries.set(id, held);
        if (value.server !== this.serverId && this.#own.has(id) && this.#alive(value.server)) {
          this.#own.delete(id); // it moved: the other server has it now
          this.#yielded.add(id);
        }
        if (this.#ready) {
          this.#refresh(id);
          if (before?.xds !== held.xds || before.value.server !== value.server) this.#binding?.onStatus(id);
        }
      } else {
        this.#entries.delete(id);
        this.#nodes.delete(id);
        if (this.#own.get(id) !== undefined) {
          // Ours, deleted as a dead server's while we were cut off: put it back.
          this.#own.delete(id);
          if (this.#binding?.local(id)) this.publish(id);
        }
        if (this.#ready) {
          this.#refresh(id);
          this.#binding?.onStatus(id);
        }
      }
    }
    if (!this.#ready && pending === 0) this.#setReady();
  }

  #idOf(entry: BucketEntry): string {
    const token = entry.key.slice(INSTANCE.length);
    return token.startsWith("=") ? Buffer.from(token.slice(1), "base64url").toString() : token;
  }

  #refreshServer(server: string): void {
    for (const [id, held] of this.#entries) {
      if (held.value.server === server) {
        this.#refresh(id);
        this.#binding?.onStatus(id);
      }
    }
  }

  /** Compares what is visible of one instance with what was last reported, and reports the change. */
  #refresh(id: string): void {
    const held = this.#entries.get(id);
    const shown = this.#visible.get(id);
    const visible = held && held.value.server !== this.serverId && this.#alive(held.value.server);
    if (!visible) {
      if (shown) {
        this.#visible.delete(id);
        this.#binding?.onRemote(shown.instance, "disconnected");
      }
      return;
    }
    if (shown?.identity === held.identity) return;
    const draining = held.value.draining === true;
    this.#visible.set(id, { instance: held.value.instance, draining, identity: held.identity });
    this.#binding?.onRemote(held.value.instance, draining && !shown?.draining ? "draining" : "connected");
  }

  #node(id: string): NodeStatus | undefined {
    const held = this.#entries.get(id);
    if (!held || !this.#alive(held.value.server)) return undefined;
    const cached = this.#nodes.get(id);
    if (cached?.revision === held.revision) return cached.node;
    const types = new Map<string, TypeStatus>();
    for (const [typeUrl, t] of Object.entries(held.value.xds ?? {})) {
      const resources = new Map<string, { version: string; state: ResourceSyncState }>();
      for (const [name, [version, state]] of Object.entries(t.resources ?? {}))
        resources.set(name, { version, state });
      types.set(typeUrl, {
        typeUrl,
        ...(t.sent !== undefined && { sentVersion: t.sent }),
        ...(t.acked !== undefined && { ackedVersion: t.acked }),
        ...(t.nacked !== undefined && { nackedVersion: t.nacked }),
        ...(t.error !== undefined && { errorDetail: { code: 3, message: t.error } }),
        lastUpdated: new Date(0),
        resources,
      });
    }
    const { instance } = held.value;
    const node: NodeStatus = {
      node: { id, cluster: instance.function, metadata: {} },
      streams: 1,
      connectedAt: new Date(instance.connectedAt),
      types,
    };
    this.#nodes.set(id, { revision: held.revision, node });
    return node;
  }

  /** Dead servers' instances go from view now; their keys are deleted (by whoever gets there first). */
  async #sweep(): Promise<void> {
    if (this.#closed || !this.#ready) return;
    const now = Date.now();
    const dead: [string, number][] = [];
    for (const [server, s] of this.#servers) {
      if (server !== this.serverId && now - s.seenAt > this.#o.ttlMs) dead.push([server, s.revision]);
    }
    for (const [server] of dead) {
      this.#servers.delete(server);
      this.#refreshServer(server);
    }
    const deletes: Promise<unknown>[] = [];
    for (const [server, revision] of dead) deletes.push(this.#cas.delete(`${SERVER}${server}`, revision));
    // Instances of servers not heard of (dead now, or before we started): their keys go.
    const settled = now - this.#readyAt > this.#o.ttlMs;
    for (const [id, held] of this.#entries) {
      const server = held.value.server;
      if (server === this.serverId || this.#servers.has(server)) continue;
      if (settled || dead.some(([d]) => d === server))
        deletes.push(this.#cas.delete(instanceKey(id), held.revision));
    }
    await Promise.allSettled(deletes);
  }
}
