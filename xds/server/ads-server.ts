// The xDS management server: ADS (SotW and Delta), the per-type services and CSDS on one grpc-js
// Server, all answering from one ConfigWatcher.
import {
  Server,
  ServerCredentials,
  type ServerUnaryCall,
  type sendUnaryData,
  type UntypedServiceImplementation,
} from "@grpc/grpc-js";
import type { ConfigWatcher } from "../cache/snapshot-cache.js";
import { XDS_ERR, XdsError } from "../errors.js";
import { type Logger, silentLogger } from "../logger.js";
import { DISCOVERY_TYPES } from "../type-urls.js";
import { ADS_PATHS, CSDS_PATHS, rawService, TYPED_SERVICES } from "../wire/services.js";
import type { ServerCallbacks } from "./callbacks.js";
import { type StatusReader, StatusTable } from "./client-status.js";
import { handleFetchClientStatus, handleStreamClientStatus } from "./csds.js";
import { DeltaStream } from "./delta.js";
import { handleFetch } from "./fetch.js";
import { SotwStream } from "./sotw.js";
import type { RawCall, StreamDeps, StreamSession } from "./stream-session.js";

export interface AdsServerOptions {
  cache: ConfigWatcher;
  callbacks: ServerCallbacks;
  logger: Logger;
  /** Type URLs ADS answers; a request for any other ends its stream with INVALID_ARGUMENT. */
  typeUrls: readonly string[];
  /** Sent as control_plane.identifier in every response. */
  controlPlaneId: string | undefined;
}

export function defaultAdsServerOptions(cache: ConfigWatcher): AdsServerOptions {
  return { cache, callbacks: {}, logger: silentLogger, typeUrls: DISCOVERY_TYPES, controlPlaneId: undefined };
}

export class AdsServer {
  readonly #opts: AdsServerOptions;
  readonly #status = new StatusTable();
  readonly #sessions = new Set<StreamSession>();
  readonly #deps: StreamDeps;
  #server: Server | undefined;
  #streamIds = 0;
  #closed = false;

  constructor(options: Partial<AdsServerOptions> & { cache: ConfigWatcher }) {
    this.#opts = { ...defaultAdsServerOptions(options.cache), ...options };
    if (this.#opts.typeUrls.length === 0)
      throw new XdsError(XDS_ERR.invalidOption, "typeUrls must not be empty");
    this.#deps = {
      cache: this.#opts.cache,
      callbacks: this.#opts.callbacks,
      status: this.#status,
      logger: this.#opts.logger,
      acceptTypes: new Set(this.#opts.typeUrls),
      controlPlaneId: this.#opts.controlPlaneId,
      nextStreamId: () => ++this.#streamIds,
      opened: (s) => this.#sessions.add(s),
      closed: (s) => this.#sessions.delete(s),
    };
  }

  /** Per node: versions sent, ACKed, NACKed per type, and the last NACK's detail. */
  get status(): StatusReader {
    return this.#status;
  }

  /** Streams open now. */
  get streamCount(): number {
    return this.#sessions.size;
  }

  /** Adds ADS, CDS, EDS, LDS, RDS, SDS and CSDS to a grpc-js Server the caller owns. */
  register(server: Server): void {
    const deps = this.#deps;
    const stream = (call: RawCall, make: (call: RawCall) => void) => {
      if (this.#closed)
        call.emit(
          "error",
          Object.assign(new Error("xDS server closed"), { code: 14, details: "xDS server closed" }),
        );
      else make(call);
    };
    const adsHandlers: UntypedServiceImplementation = {
      StreamAggregatedResources: (call: RawCall) => stream(call, (c) => new SotwStream(c, deps)),
      DeltaAggregatedResources: (call: RawCall) => stream(call, (c) => new DeltaStream(c, deps)),
    };
    server.addService(
      rawService([
        { path: ADS_PATHS.sotw, requestStream: true, responseStream: true },
        { path: ADS_PATHS.delta, requestStream: true, responseStream: true },
      ]),
      adsHandlers,
    );
    for (const svc of TYPED_SERVICES) {
      const name = (p: string) => p.slice(p.lastIndexOf("/") + 1);
      const handlers: UntypedServiceImplementation = {
        [name(svc.stream)]: (call: RawCall) => stream(call, (c) => new SotwStream(c, deps, svc.typeUrl)),
        [name(svc.delta)]: (call: RawCall) => stream(call, (c) => new DeltaStream(c, deps, svc.typeUrl)),
        [name(svc.fetch)]: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) =>
          handleFetch(deps, svc.typeUrl, call, cb),
      };
      server.addService(
        rawService([
          { path: svc.stream, requestStream: true, responseStream: true },
          { path: svc.delta, requestStream: true, responseStream: true },
          { path: svc.fetch, requestStream: false, responseStream: false },
        ]),
        handlers,
      );
    }
    const csdsHandlers: UntypedServiceImplementation = {
      StreamClientStatus: (call: RawCall) => handleStreamClientStatus(this.#status, this.#opts.cache, call),
      FetchClientStatus: (call: ServerUnaryCall<Buffer, Buffer>, cb: sendUnaryData<Buffer>) =>
        handleFetchClientStatus(this.#status, this.#opts.cache, call, cb),
    };
    server.addService(
      rawService([
        { path: CSDS_PATHS.stream, requestStream: true, responseStream: true },
        { path: CSDS_PATHS.fetch, requestStream: false, responseStream: false },
      ]),
      csdsHandlers,
    );
  }

  /** Starts a grpc-js Server of its own on host:port (port 0: one from the OS); resolves the port. */
  async listen(
    address: string,
    credentials: ServerCredentials = ServerCredentials.createInsecure(),
  ): Promise<number> {
    if (this.#server) throw new XdsError(XDS_ERR.invalidOption, "AdsServer is already listening");
    if (this.#closed) throw new XdsError(XDS_ERR.closed, "AdsServer is closed");
    // Keepalive finds clients that vanished without closing, so their streams and status end.
    const server = new Server({ "grpc.keepalive_time_ms": 30_000, "grpc.keepalive_timeout_ms": 10_000 });
    this.register(server);
    const port = await new Promise<number>((resolve, reject) => {
      server.bindAsync(address, credentials, (err, p) => (err ? reject(err) : resolve(p)));
    });
    this.#server = server;
    this.#opts.logger.info("xds server listening", { address, port });
    return port;
  }

  /** Ends every stream with UNAVAILABLE (clients fail over) and stops the own server. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const s of [...this.#sessions]) s.shutdown();
    const server = this.#server;
    this.#server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        server.forceShutdown();
        resolve();
      }, 2000);
      server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** Stops at once, without waiting for anything. Idempotent. */
  destroy(): void {
    this.#closed = true;
    for (const s of [...this.#sessions]) s.shutdown();
    this.#server?.forceShutdown();
    this.#server = undefined;
  }
}
