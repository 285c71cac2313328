// catena.v1.Bandwidth {bytes_per_second, burst_bytes, scope: CONNECTION|CHAIN}, the byte-rate shaping
// filter's config (typed_config of catena.filters.network.bandwidth). Accepted in every form it can
// reach a host in: the Envoy JSON form when proto/catena/v1/bandwidth.proto is loaded (scope's zero
// value is then read from the proto, since JSON leaves it out), proto3 JSON camelCase names, and the
// undecoded Any ({type_url, value: bytes}) of a process without the proto, which is read by field
// number (1 bytes_per_second, 2 burst_bytes, 3 scope with CONNECTION = 0, CHAIN = 1).
import protobuf from "protobufjs";
import { findMessageType } from "../../xds/protos.js";
import { isObject, wrappedValue } from "../sdk/proto-json.js";
import { ErrorList, type Validated } from "../sdk/validated.js";

export const BANDWIDTH_TYPE_URL = "type.googleapis.com/catena.v1.Bandwidth";

export type BandwidthScope = "CONNECTION" | "CHAIN";

export interface BandwidthConfig {
  bytesPerSecond: number;
  burstBytes?: number;
  scope: BandwidthScope;
}

const SCOPE_BY_NUMBER: Record<number, BandwidthScope> = { 0: "CONNECTION", 1: "CHAIN" };

/** The name of the scope enum's zero value, from the loaded proto; CONNECTION without one. */
function zeroScope(): string {
  const t = findMessageType("catena.v1.Bandwidth");
  const f = t?.fields.scope;
  const e = f?.resolvedType;
  if (e instanceof protobuf.Enum) return e.valuesById[0] ?? "CONNECTION";
  return "CONNECTION";
}

function scopeOf(v: unknown): BandwidthScope | string {
  if (v === undefined || v === null) return zeroScope();
  if (typeof v === "number") {
    const t = findMessageType("catena.v1.Bandwidth")?.fields.scope?.resolvedType;
    if (t instanceof protobuf.Enum) return t.valuesById[v] ?? String(v);
    return SCOPE_BY_NUMBER[v] ?? String(v);
  }
  return String(v).toUpperCase();
}

/** Reads the message bytes by field number; undefined when they are not a Bandwidth. */
function fromBytes(value: Uint8Array): Record<string, unknown> | undefined {
  try {
    const r = new protobuf.Reader(value);
    const out: Record<string, unknown> = {};
    while (r.pos < r.len) {
      const tag = r.uint32();
      const field = tag >>> 3;
      if ((tag & 7) !== 0) {
        r.skipType(tag & 7);
        continue;
      }
      const n = Number(r.uint64().toString());
      if (field === 1) out.bytes_per_second = n;
      else if (field === 2) out.burst_bytes = n;
      else if (field === 3) out.scope = n;
    }
    return out;
  } catch {
    return undefined;
  }
}

export function decodeBandwidthConfig(raw: unknown): Validated<BandwidthConfig> {
  const errors = new ErrorList();
  let o: Record<string, unknown> = isObject(raw) ? raw : {};
  if (!isObject(raw)) errors.add("", "must be a catena.v1.Bandwidth");
  if (o.value instanceof Uint8Array && typeof o.type_url === "string") {
    const decoded = fromBytes(o.value);
    if (!decoded) errors.add("value", "cannot decode catena.v1.Bandwidth");
    o = decoded ?? {};
  }
  const bps = Number(wrappedValue(o.bytes_per_second ?? o.bytesPerSecond));
  if (!Number.isFinite(bps) || bps <= 0) errors.add("bytes_per_second", "must be a positive number");
  const burstRaw = o.burst_bytes ?? o.burstBytes;
  let burst: number | undefined;
  if (burstRaw !== undefined && burstRaw !== null) {
    burst = Number(wrappedValue(burstRaw));
    if (!Number.isInteger(burst) || burst < 0) errors.add("burst_bytes", "must be an integer >= 0");
    // 0 is proto3's "unset": one second's worth, the ByteShaper default.
    if (burst === 0) burst = undefined;
  }
  const scope = scopeOf(o.scope);
  if (scope === "SCOPE_UNSPECIFIED") {
    // An enum whose zero value means "unspecified": the operator's plain `bandwidth` is the chain's.
  } else if (scope !== "CONNECTION" && scope !== "CHAIN")
    errors.add("scope", `must be CONNECTION or CHAIN, got ${scope}`);
  const out: BandwidthConfig = {
    bytesPerSecond: bps,
    scope: scope === "CONNECTION" ? "CONNECTION" : "CHAIN",
  };
  if (burst !== undefined) out.burstBytes = burst;
  return errors.result(out);
}
