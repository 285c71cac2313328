// Client Status Discovery Service: each node's config as this server sees it (envoy.service.status.v3).
import {
  status as grpcStatus,
  type ServerDuplexStream,
  type ServerUnaryCall,
  type sendUnaryData,
} from "@grpc/grpc-js";
import type { ConfigWatcher } from "../cache/snapshot-cache.js";
import { nodeToProto } from "../node.js";
import { messageType, strictReader } from "../protos.js";
import { decodeAny } from "../resource.js";
import { isProtoObject, obj, objs, type ProtoObject, str } from "../wire/proto-object.js";
import type { NodeStatus, ResourceSyncState, StatusReader } from "./client-status.js";

export interface NodeIdMatcher {
  exact?: string;
  prefix?: string;
  suffix?: string;
  contains?: string;
  regex?: string;
  ignoreCase?: boolean;
}

export interface ClientStatusQuery {
  /** OR semantics; empty matches every node. */
  nodeIds: NodeIdMatcher[];
  excludeResourceContents: boolean;
}

const REQUEST = "envoy.service.status.v3.ClientStatusRequest";
const RESPONSE = "envoy.service.status.v3.ClientStatusResponse";

export type ParsedQuery = { ok: true; value: ClientStatusQuery } | { ok: false; error: string };

export function decodeClientStatusRequest(data: Uint8Array): ParsedQuery {
  try {
    const type = messageType(REQUEST);
    const o: unknown = type.toObject(type.decode(strictReader(data)), { defaults: false });
    if (!isProtoObject(o)) return { ok: false, error: "ClientStatusRequest: not a message" };
    const nodeIds: NodeIdMatcher[] = [];
    for (const m of objs(o, "node_matchers")) {
      const id = obj(m, "node_id");
      if (!id) {
        nodeIds.push({});
        continue;
      }
      const regex = obj(id, "safe_regex");
      const matcher: NodeIdMatcher = { ignoreCase: id.ignore_case === true };
      for (const k of ["exact", "prefix", "suffix", "contains"] as const)
        if (typeof id[k] === "string") matcher[k] = id[k];
      if (regex) matcher.regex = str(regex, "regex");
      nodeIds.push(matcher);
    }
    return { ok: true, value: { nodeIds, excludeResourceContents: o.exclude_resource_contents === true } };
  } catch (e) {
    return {
      ok: false,
      error: `cannot decode ClientStatusRequest: ${e instanceof Error ? e.message : String(e)}`,
    };
  }
}

export function matchesNodeId(m: NodeIdMatcher, id: string): boolean {
  const fold = (s: string) => (m.ignoreCase ? s.toLowerCase() : s);
  const v = fold(id);
  if (m.exact !== undefined) return v === fold(m.exact);
  if (m.prefix !== undefined) return v.startsWith(fold(m.prefix));
  if (m.suffix !== undefined) return v.endsWith(fold(m.suffix));
  if (m.contains !== undefined) return v.includes(fold(m.contains));
  if (m.regex !== undefined) {
    try {
      return new RegExp(`^(?:${m.regex})$`, m.ignoreCase ? "i" : "").test(id);
    } catch {
      return false;
    }
  }
  return true;
}

function timestamp(d: Date): ProtoObject {
  const ms = d.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

const CONFIG_STATUS: Record<ResourceSyncState, string> = { sent: "STALE", acked: "SYNCED", nacked: "ERROR" };
const CLIENT_STATUS: Record<ResourceSyncState, string> = {
  sent: "REQUESTED",
  acked: "ACKED",
  nacked: "NACKED",
};

function clientConfig(n: NodeStatus, cache: ConfigWatcher, excludeContents: boolean): ProtoObject {
  const snapshot = cache.snapshot(cache.nodeKey(n.node));
  const configs: ProtoObject[] = [];
  for (const t of n.types.values()) {
    for (const [name, r] of t.resources) {
      const entry: ProtoObject = {
        type_url: t.typeUrl,
        name,
        version_info: t.sentVersion ?? "",
        last_updated: timestamp(t.lastUpdated),
        config_status: CONFIG_STATUS[r.state],
        client_status: CLIENT_STATUS[r.state],
      };
      const current = snapshot?.get(t.typeUrl, name);
      const any = !excludeContents && current?.version === r.version ? decodeAny(current.any) : undefined;
      if (any) entry.xds_config = { type_url: any.typeUrl, value: any.value };
      if (r.state === "nacked" && t.errorDetail) {
        entry.error_state = {
          details: t.errorDetail.message,
          version_info: t.nackedVersion ?? "",
          last_update_attempt: timestamp(t.lastUpdated),
        };
      }
      configs.push(entry);
    }
  }
  return { node: nodeToProto(n.node), generic_xds_configs: configs };
}

export function encodeClientStatusResponse(
  status: StatusReader,
  cache: ConfigWatcher,
  query: ClientStatusQuery,
): Buffer {
  const nodes = status
    .nodes()
    .filter((n) => query.nodeIds.length === 0 || query.nodeIds.some((m) => matchesNodeId(m, n.node.id)));
  const type = messageType(RESPONSE);
  const msg = type.fromObject({
    config: nodes.map((n) => clientConfig(n, cache, query.excludeResourceContents)),
  });
  const bytes = type.encode(msg).finish();
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

export function handleFetchClientStatus(
  status: StatusReader,
  cache: ConfigWatcher,
  call: ServerUnaryCall<Buffer, Buffer>,
  callback: sendUnaryData<Buffer>,
): void {
  const q = decodeClientStatusRequest(call.request);
  if (!q.ok) callback({ code: grpcStatus.INVALID_ARGUMENT, details: q.error });
  else callback(null, encodeClientStatusResponse(status, cache, q.value));
}

export function handleStreamClientStatus(
  status: StatusReader,
  cache: ConfigWatcher,
  call: ServerDuplexStream<Buffer, Buffer>,
): void {
  call.on("data", (data: Buffer) => {
    const q = decodeClientStatusRequest(data);
    if (!q.ok) {
      call.emit(
        "error",
        Object.assign(new Error(q.error), { code: grpcStatus.INVALID_ARGUMENT, details: q.error }),
      );
      return;
    }
    call.write(encodeClientStatusResponse(status, cache, q.value));
  });
  call.on("end", () => call.end());
}
