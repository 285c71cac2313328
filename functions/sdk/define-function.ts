// The plugin contract (DESIGN.md "The plugin contract"): a function is one defineFunction() call that
// names the filter type URLs it understands, parses their configs, and makes network filters. The host
// does everything else. A NetworkFilter is an interceptor on a hop's data path: it sees each new
// connection (the original client, from PROXY v2 when present) and accepts or denies it, may choose
// the upstream hash key, may wrap the byte streams with throttles, and sees the close. Filters reach the
// host only through their HostHelper; a fused chain gives each hop's filter its own child helper.
import type { Logger } from "../../xds/logger.js";
import { SDK_ERROR, SdkError } from "./errors.js";
import type { ProxyEndpoint } from "./proxy-protocol.js";
import type { Throttle } from "./pump.js";
import type { FieldError, Validated } from "./validated.js";

/** What a filter knows of a connection. One object per connection, shared by every filter of it. */
export interface Connection {
  /** Unique within the host process. */
  readonly id: number;
  /** The original client: the PROXY v2 source when a previous hop sent one, else the socket peer. */
  readonly source: ProxyEndpoint;
  /** Where the client connected: the PROXY v2 destination, else this socket's local address. */
  readonly destination: ProxyEndpoint;
  /** Who connected to this hop: the client at hop 0, the previous hop's instance after. */
  readonly peer: ProxyEndpoint;
  readonly chain: string;
  /** The hop the connection arrived at (a fused listener's first hop). A filter's own hop is helper.scope.hop. */
  readonly hop: number;
  /** The Listener resource's name. */
  readonly listener: string;
}

export interface Accept {
  readonly allow: true;
  /** Hashed by ring_hash/maglev clusters instead of the source address. The last filter to set one wins. */
  readonly hashKey?: string;
}

export interface Deny {
  readonly allow: false;
  /** Short and stable (a rule or policy name): it labels metrics. */
  readonly reason: string;
  /** Hold the connection this long before closing it (connection_limit's delay); default 0. */
  readonly delayMs?: number;
}

export type Verdict = Accept | Deny;

/** The accept verdict without a hash key: one frozen object, so accepting allocates nothing. */
export const ACCEPT: Accept = Object.freeze({ allow: true });

export function accept(hashKey?: string): Accept {
  return hashKey === undefined ? ACCEPT : { allow: true, hashKey };
}

export function deny(reason: string, delayMs?: number): Deny {
  return delayMs ? { allow: false, reason, delayMs } : { allow: false, reason };
}

/** Throttles for one connection's two directions (up: client → upstream). */
export interface StreamWrap {
  readonly up?: Throttle;
  readonly down?: Throttle;
}

export interface ConnectionStats {
  bytesUp: number;
  bytesDown: number;
  durationMs: number;
  /** Whether an upstream connection was established. */
  connected: boolean;
  error?: Error;
}

/** A hop's data-path interceptor. Only onConnection is required; no method may block the event loop. */
export interface NetworkFilter {
  /** Decides a new connection: synchronously for O(1) decisions; a promise only when it must wait. */
  onConnection(conn: Connection): Verdict | Promise<Verdict>;
  /** For a connection every filter accepted: throttles its bytes pass through (shaping, counting). */
  wrapStreams?(conn: Connection): StreamWrap | undefined;
  /** Once per connection this filter accepted, when it ends, even if a later filter denied it. */
  onClose?(conn: Connection, stats: ConnectionStats): void;
  /** The filter was replaced (config change) or its listener removed. Idempotent. */
  close?(): void;
}

/** Where a helper sits: the host, and for a filter its listener, chain, hop and position. */
export interface HelperScope {
  /** The function type this helper speaks for: the plugin's name (event kind). */
  readonly function: string;
  /** The instance (xDS node id): the event name. */
  readonly nodeId: string;
  readonly listener?: string;
  readonly chain?: string;
  readonly hop?: number;
  /** Position of the filter in its filter chain. */
  readonly filterIndex?: number;
}

export interface PluginEvent {
  /** Past tense, lower case: denied, throttled... */
  verb: string;
  data?: unknown;
}

export interface MetricCounter {
  /** Adds n (default 1) under the helper's scope labels (listener, chain, hop). */
  add(n?: number): void;
}

export interface PluginMetrics {
  /** A counter named catena_<plugin>_<name>; the same name returns the same counter. */
  counter(name: string, description: string): MetricCounter;
}

export interface HostHelper {
  readonly log: Logger;
  /** Publishes a CloudEvent `dev.catena.<function>.<verb>`; never blocks, dropped when the bus is down. */
  emit(event: PluginEvent): void;
  readonly metrics: PluginMetrics;
  readonly scope: HelperScope;
}

export interface FunctionSpec<C> {
  /** The function type: `catena function NAME`, the event kind, the node metadata `type`. */
  name: string;
  /** Filter type URLs this function understands (an Envoy type, or a TypedStruct's type_url). */
  configTypes: readonly string[];
  /** Validates one filter's config (the typed_config fields, or a TypedStruct's value). Never throws. */
  parseConfig(raw: unknown, typeUrl: string): Validated<C>;
  createFilter(config: C, helper: HostHelper): NetworkFilter;
}

const BRAND: unique symbol = Symbol.for("catena.function-definition");

export interface FunctionDefinition<C = unknown> extends FunctionSpec<C> {
  readonly [BRAND]: true;
}

/** A filter config parsed and ready to instantiate; the type of C is erased here. */
export interface PreparedFilter {
  readonly function: string;
  readonly typeUrl: string;
  create(helper: HostHelper): NetworkFilter;
}

const NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

/** Checks the spec eagerly (bad input fails here, not at the first connection). */
export function defineFunction<C>(spec: FunctionSpec<C>): FunctionDefinition<C> {
  const bad = (field: string, why: string) =>
    new SdkError(SDK_ERROR.invalidArgument, `defineFunction: ${field}: ${why}`);
  if (typeof spec.name !== "string" || !NAME.test(spec.name) || spec.name.length > 63)
    throw bad("name", "must be a DNS-1123 label");
  if (!Array.isArray(spec.configTypes)) throw bad("configTypes", "must be an array of type URLs");
  const seen = new Set<string>();
  spec.configTypes.forEach((t, i) => {
    if (typeof t !== "string" || !t.includes("/")) throw bad(`configTypes[${i}]`, "must be a type URL");
    if (seen.has(t)) throw bad(`configTypes[${i}]`, `${t} is listed twice`);
    seen.add(t);
  });
  if (typeof spec.parseConfig !== "function") throw bad("parseConfig", "must be a function");
  if (typeof spec.createFilter !== "function") throw bad("createFilter", "must be a function");
  return Object.freeze({
    ...spec,
    configTypes: Object.freeze([...spec.configTypes]),
    [BRAND]: true as const,
  });
}

export function isFunctionDefinition(v: unknown): v is FunctionDefinition {
  return typeof v === "object" && v !== null && (v as { [BRAND]?: unknown })[BRAND] === true;
}

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Functions by name and by filter type URL. Registration is explicit (nothing registers on import)
 * and a second function claiming a name or a type URL is refused.
 */
export class FunctionRegistry {
  readonly #byName = new Map<string, FunctionDefinition<unknown>>();
  readonly #byType = new Map<string, { fn: string; prepare: (raw: unknown) => Validated<PreparedFilter> }>();

  register<C>(def: FunctionDefinition<C>): void {
    if (!isFunctionDefinition(def))
      throw new SdkError(SDK_ERROR.invalidArgument, "register: not a defineFunction() result");
    if (this.#byName.has(def.name))
      throw new SdkError(SDK_ERROR.duplicateRegistration, `function ${def.name} is already registered`);
    for (const t of def.configTypes) {
      const owner = this.#byType.get(t);
      if (owner)
        throw new SdkError(
          SDK_ERROR.duplicateRegistration,
          `${def.name}: filter type ${t} is already handled by ${owner.fn}`,
        );
    }
    this.#byName.set(def.name, def as FunctionDefinition<unknown>);
    for (const typeUrl of def.configTypes) {
      this.#byType.set(typeUrl, {
        fn: def.name,
        prepare: (raw) => {
          let parsed: Validated<C>;
          try {
            parsed = def.parseConfig(raw, typeUrl);
          } catch (e) {
            // A throwing parser rejects the config (a NACK), never the host.
            return {
              ok: false,
              errors: [{ path: "", message: `${def.name}: parseConfig threw: ${errorText(e)}` }],
            };
          }
          if (!parsed.ok) return parsed;
          const config = parsed.value;
          return {
            ok: true,
            value: { function: def.name, typeUrl, create: (helper) => def.createFilter(config, helper) },
          };
        },
      });
    }
  }

  get(name: string): FunctionDefinition<unknown> | undefined {
    return this.#byName.get(name);
  }

  names(): string[] {
    return [...this.#byName.keys()];
  }

  typeUrls(): string[] {
    return [...this.#byType.keys()];
  }

  /** Parses one filter config with the function registered for its type URL. */
  prepare(typeUrl: string, raw: unknown): Validated<PreparedFilter> {
    const entry = this.#byType.get(typeUrl);
    if (!entry) {
      const known = this.typeUrls().join(", ") || "none";
      const errors: FieldError[] = [
        { path: "", message: `no function handles ${typeUrl} (known: ${known})` },
      ];
      return { ok: false, errors };
    }
    return entry.prepare(raw);
  }
}
