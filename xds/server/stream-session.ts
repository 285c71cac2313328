// What every discovery stream shares, whatever its variant: requests handled one at a time, the
// node admitted once, the snapshot watched, writes paced by the transport, and a clear status
// when the stream must end.
import { status as grpcStatus, type ServerDuplexStream } from "@grpc/grpc-js";
import type { Snapshot } from "../cache/snapshot.js";
import type { ConfigWatcher } from "../cache/snapshot-cache.js";
import type { Logger } from "../logger.js";
import type { Node } from "../node.js";
import type { WireDecoded } from "../wire/discovery.js";
import type { ServerCallbacks, StreamInfo, StreamVariant } from "./callbacks.js";
import type { StatusTable } from "./client-status.js";

export interface StreamDeps {
  cache: ConfigWatcher;
  callbacks: ServerCallbacks;
  status: StatusTable;
  logger: Logger;
  acceptTypes: ReadonlySet<string>;
  controlPlaneId: string | undefined;
  nextStreamId(): number;
  opened(session: StreamSession): void;
  closed(session: StreamSession): void;
}

/** The variant-specific half of a stream: SotW or Delta. */
export interface StreamProtocol<Req extends { node?: Node; typeUrl: string }> {
  readonly messageName: string;
  decode(data: Uint8Array): WireDecoded<Req>;
  /** Called in order, after admission, with the request's resolved type URL. */
  onRequest(req: Req, typeUrl: string): void;
  /** The node's snapshot changed, or the transport drained after being full. */
  push(): void;
}

export type RawCall = ServerDuplexStream<Buffer, Buffer>;

export class StreamSession {
  readonly id: number;
  readonly deps: StreamDeps;
  readonly variant: StreamVariant;
  readonly #call: RawCall;
  readonly #fixedType: string | undefined;
  #push: () => void = () => {};
  #messageName = "request";
  #queue: Promise<void> = Promise.resolve();
  #info: StreamInfo | undefined;
  #cancelWatch: (() => void) | undefined;
  #snapshot: Snapshot | undefined;
  #nonce = 0;
  #blocked = false;
  #done = false;

  constructor(call: RawCall, deps: StreamDeps, variant: StreamVariant, fixedType?: string) {
    this.#call = call;
    this.deps = deps;
    this.variant = variant;
    this.#fixedType = fixedType;
    this.id = deps.nextStreamId();
  }

  get node(): Node {
    if (!this.#info) throw new Error("stream has no node yet");
    return this.#info.node;
  }

  get snapshot(): Snapshot | undefined {
    return this.#snapshot;
  }

  /** True while the transport's buffer is full; the protocol defers pushes until it drains. */
  get blocked(): boolean {
    return this.#blocked;
  }

  get done(): boolean {
    return this.#done;
  }

  run<Req extends { node?: Node; typeUrl: string }>(protocol: StreamProtocol<Req>): void {
    this.#push = () => protocol.push();
    this.#messageName = protocol.messageName;
    this.deps.opened(this);
    this.#call.on("data", (data: Buffer) => {
      this.#queue = this.#queue
        .then(() => this.#process(protocol, data))
        .catch((err: unknown) => this.#internal(err));
    });
    this.#call.on("end", () => this.#finish(undefined));
    this.#call.on("error", () => this.#cleanup());
    this.#call.on("cancelled", () => this.#cleanup());
    this.#call.on("close", () => this.#cleanup());
  }

  nextNonce(): string {
    this.#nonce++;
    return String(this.#nonce);
  }

  write(message: Buffer): void {
    if (this.#done) return;
    if (!this.#call.write(message) && !this.#blocked) {
      this.#blocked = true;
      this.#call.once("drain", () => {
        this.#blocked = false;
        if (!this.#done) this.#guard(this.#push);
      });
    }
  }

  /** Ends the stream with a status, e.g. INVALID_ARGUMENT for a bad request. */
  fail(code: grpcStatus, details: string): void {
    if (this.#done) return;
    this.deps.logger.warn("xds stream ended", {
      stream: this.id,
      node: this.#info?.node.id,
      code: grpcStatus[code],
      details,
    });
    this.#finish({ code, details });
  }

  async #process<Req extends { node?: Node; typeUrl: string }>(
    protocol: StreamProtocol<Req>,
    data: Buffer,
  ): Promise<void> {
    if (this.#done) return;
    const decoded = protocol.decode(data);
    if (!decoded.ok) {
      this.fail(grpcStatus.INVALID_ARGUMENT, decoded.error);
      return;
    }
    const req = decoded.value;
    const typeUrl = this.#resolveType(req.typeUrl);
    if (typeUrl === undefined) return;
    if (!this.#info && !(await this.#admit(req.node, typeUrl))) return;
    if (this.#done) return;
    protocol.onRequest(req, typeUrl);
  }

  #resolveType(requested: string): string | undefined {
    if (this.#fixedType) {
      if (requested === "" || requested === this.#fixedType) return this.#fixedType;
      this.fail(
        grpcStatus.INVALID_ARGUMENT,
        `this service serves only ${this.#fixedType}, not type URL "${requested}"`,
      );
      return undefined;
    }
    if (this.deps.acceptTypes.has(requested)) return requested;
    this.fail(
      grpcStatus.INVALID_ARGUMENT,
      requested ? `unknown type URL "${requested}"` : "request has no type_url",
    );
    return undefined;
  }

  async #admit(node: Node | undefined, typeUrl: string): Promise<boolean> {
    if (!node?.id) {
      this.fail(
        grpcStatus.INVALID_ARGUMENT,
        `the first ${this.#messageName} on a stream must carry node with an id`,
      );
      return false;
    }
    const info: StreamInfo = {
      streamId: this.id,
      node,
      variant: this.variant,
      typeUrl,
      peer: this.#call.getPeer(),
    };
    const admission = this.deps.callbacks.onStreamOpen
      ? await Promise.resolve()
          .then(() => this.deps.callbacks.onStreamOpen?.(info) ?? { ok: true as const })
          .catch((err: unknown) => ({ ok: false as const, reason: `admission check failed: ${String(err)}` }))
      : { ok: true as const };
    if (this.#done) return false;
    if (!admission.ok) {
      this.fail(grpcStatus.PERMISSION_DENIED, `node "${node.id}" refused: ${admission.reason}`);
      return false;
    }
    this.#info = info;
    this.deps.status.streamOpened(node);
    const key = this.deps.cache.nodeKey(node);
    this.#snapshot = this.deps.cache.snapshot(key);
    this.#cancelWatch = this.deps.cache.watch(key, (snapshot) => {
      this.#snapshot = snapshot;
      if (!this.#done && this.#info) this.#guard(this.#push);
    });
    this.deps.logger.info("xds stream opened", {
      stream: this.id,
      node: node.id,
      variant: this.variant,
      key,
    });
    return true;
  }

  #finish(status: { code: grpcStatus; details: string } | undefined): void {
    if (this.#done) return;
    if (status) {
      this.#call.emit("error", Object.assign(new Error(status.details), status));
    } else {
      this.#call.end();
    }
    this.#cleanup();
  }

  #cleanup(): void {
    if (this.#done) return;
    this.#done = true;
    this.#cancelWatch?.();
    this.deps.closed(this);
    const info = this.#info;
    if (!info) return;
    this.deps.status.streamClosed(info.node.id);
    this.deps.logger.info("xds stream closed", { stream: this.id, node: info.node.id });
    safely(this.deps.logger, "onStreamClosed", () => this.deps.callbacks.onStreamClosed?.(info));
  }

  /** A bug in this server must end one stream, not the process. */
  #guard(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#internal(err);
    }
  }

  #internal(err: unknown): void {
    this.deps.logger.error("xds stream failed", {
      stream: this.id,
      error: err instanceof Error ? (err.stack ?? err.message) : String(err),
    });
    this.fail(grpcStatus.INTERNAL, "xDS server error");
  }

  /** Server shutdown: clients reconnect elsewhere. */
  shutdown(): void {
    this.fail(grpcStatus.UNAVAILABLE, "xDS server shutting down");
  }
}

/** Runs a user callback; a throwing hook is logged, never allowed to break the stream. */
export function safely(logger: Logger, hook: string, fn: () => void): void {
  try {
    fn();
  } catch (err) {
    logger.error("xds callback threw", { hook, error: String(err) });
  }
}
