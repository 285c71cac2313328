// DiscoveryRequest/Response (SotW and Delta) on the wire. Responses are assembled from resources
// already encoded by the cache, so a resource's bytes are produced once whatever the stream count.
import protobuf from "protobufjs";
import { type Node, nodeFromProto, nodeToProto } from "../node.js";
import { messageType, strictReader } from "../protos.js";
import { bytes, isProtoObject, num, obj, objs, type ProtoObject, str, strMap, strs } from "./proto-object.js";

export interface RpcStatus {
  code: number;
  message: string;
}

export interface DiscoveryRequest {
  versionInfo: string;
  node?: Node;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: RpcStatus;
}

export interface DeltaDiscoveryRequest {
  node?: Node;
  typeUrl: string;
  resourceNamesSubscribe: string[];
  resourceNamesUnsubscribe: string[];
  initialResourceVersions: Record<string, string>;
  responseNonce: string;
  errorDetail?: RpcStatus;
}

export interface AnyValue {
  typeUrl: string;
  value: Uint8Array;
}

export interface DiscoveryResponse {
  versionInfo: string;
  resources: AnyValue[];
  typeUrl: string;
  nonce: string;
  controlPlane?: string;
}

export interface DeltaResource {
  name: string;
  version: string;
  resource?: AnyValue;
}

export interface DeltaDiscoveryResponse {
  systemVersionInfo: string;
  resources: DeltaResource[];
  typeUrl: string;
  removedResources: string[];
  nonce: string;
  controlPlane?: string;
}

export type WireDecoded<T> = { ok: true; value: T } | { ok: false; error: string };

const PKG = "envoy.service.discovery.v3";
const OBJECT_OPTIONS = { longs: Number, enums: Number, defaults: false } as const;

function decodeWith<T>(typeName: string, data: Uint8Array, read: (o: ProtoObject) => T): WireDecoded<T> {
  try {
    const type = messageType(typeName);
    const o: unknown = type.toObject(type.decode(strictReader(data)), OBJECT_OPTIONS);
    if (!isProtoObject(o)) return { ok: false, error: `${typeName}: not a message` };
    return { ok: true, value: read(o) };
  } catch (e) {
    return { ok: false, error: `cannot decode ${typeName}: ${e instanceof Error ? e.message : String(e)}` };
  }
}

function readStatus(o: ProtoObject, key: string): RpcStatus | undefined {
  const s = obj(o, key);
  return s ? { code: num(s, "code"), message: str(s, "message") } : undefined;
}

function readAny(o: ProtoObject): AnyValue {
  return { typeUrl: str(o, "type_url"), value: bytes(o, "value") };
}

function withOptional<T extends object>(base: T, extra: Partial<T>): T {
  for (const [k, v] of Object.entries(extra)) if (v !== undefined) (base as Record<string, unknown>)[k] = v;
  return base;
}

export function decodeDiscoveryRequest(data: Uint8Array): WireDecoded<DiscoveryRequest> {
  return decodeWith(`${PKG}.DiscoveryRequest`, data, (o) =>
    withOptional<DiscoveryRequest>(
      {
        versionInfo: str(o, "version_info"),
        resourceNames: strs(o, "resource_names"),
        typeUrl: str(o, "type_url"),
        responseNonce: str(o, "response_nonce"),
      },
      { node: nodeFromProto(o.node), errorDetail: readStatus(o, "error_detail") },
    ),
  );
}

export function decodeDeltaDiscoveryRequest(data: Uint8Array): WireDecoded<DeltaDiscoveryRequest> {
  return decodeWith(`${PKG}.DeltaDiscoveryRequest`, data, (o) =>
    withOptional<DeltaDiscoveryRequest>(
      {
        typeUrl: str(o, "type_url"),
        resourceNamesSubscribe: strs(o, "resource_names_subscribe"),
        resourceNamesUnsubscribe: strs(o, "resource_names_unsubscribe"),
        initialResourceVersions: strMap(o, "initial_resource_versions"),
        responseNonce: str(o, "response_nonce"),
      },
      { node: nodeFromProto(o.node), errorDetail: readStatus(o, "error_detail") },
    ),
  );
}

export function decodeDiscoveryResponse(data: Uint8Array): WireDecoded<DiscoveryResponse> {
  return decodeWith(`${PKG}.DiscoveryResponse`, data, (o) =>
    withOptional<DiscoveryResponse>(
      {
        versionInfo: str(o, "version_info"),
        resources: objs(o, "resources").map(readAny),
        typeUrl: str(o, "type_url"),
        nonce: str(o, "nonce"),
      },
      {
        controlPlane: obj(o, "control_plane") ? str(obj(o, "control_plane") ?? {}, "identifier") : undefined,
      },
    ),
  );
}

export function decodeDeltaDiscoveryResponse(data: Uint8Array): WireDecoded<DeltaDiscoveryResponse> {
  return decodeWith(`${PKG}.DeltaDiscoveryResponse`, data, (o) =>
    withOptional<DeltaDiscoveryResponse>(
      {
        systemVersionInfo: str(o, "system_version_info"),
        resources: objs(o, "resources").map((r) => {
          const any = obj(r, "resource");
          return withOptional<DeltaResource>(
            { name: str(r, "name"), version: str(r, "version") },
            { resource: any ? readAny(any) : undefined },
          );
        }),
        typeUrl: str(o, "type_url"),
        removedResources: strs(o, "removed_resources"),
        nonce: str(o, "nonce"),
      },
      {
        controlPlane: obj(o, "control_plane") ? str(obj(o, "control_plane") ?? {}, "identifier") : undefined,
      },
    ),
  );
}

function statusObject(s: RpcStatus | undefined): ProtoObject | undefined {
  return s ? { code: s.code, message: s.message } : undefined;
}

function toBuffer(u: Uint8Array): Buffer {
  return Buffer.isBuffer(u) ? u : Buffer.from(u.buffer, u.byteOffset, u.byteLength);
}

export function encodeDiscoveryRequest(req: DiscoveryRequest): Buffer {
  const type = messageType(`${PKG}.DiscoveryRequest`);
  const o: ProtoObject = {
    version_info: req.versionInfo,
    resource_names: req.resourceNames,
    type_url: req.typeUrl,
    response_nonce: req.responseNonce,
  };
  if (req.node) o.node = nodeToProto(req.node);
  if (req.errorDetail) o.error_detail = statusObject(req.errorDetail);
  return toBuffer(type.encode(type.fromObject(o)).finish());
}

export function encodeDeltaDiscoveryRequest(req: DeltaDiscoveryRequest): Buffer {
  const type = messageType(`${PKG}.DeltaDiscoveryRequest`);
  const o: ProtoObject = {
    type_url: req.typeUrl,
    resource_names_subscribe: req.resourceNamesSubscribe,
    resource_names_unsubscribe: req.resourceNamesUnsubscribe,
    initial_resource_versions: req.initialResourceVersions,
    response_nonce: req.responseNonce,
  };
  if (req.node) o.node = nodeToProto(req.node);
  if (req.errorDetail) o.error_detail = statusObject(req.errorDetail);
  return toBuffer(type.encode(type.fromObject(o)).finish());
}

function controlPlane(w: protobuf.Writer, field: number, id: string | undefined): void {
  if (id)
    w.uint32((field << 3) | 2)
      .fork()
      .uint32(10)
      .string(id)
      .ldelim();
}

/** DiscoveryResponse from pre-encoded Anys (fields: version_info 1, resources 2, type_url 4, nonce 5, control_plane 6). */
export function encodeDiscoveryResponse(r: {
  versionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: Iterable<{ readonly any: Uint8Array }>;
  controlPlane?: string;
}): Buffer {
  const w = protobuf.Writer.create();
  if (r.versionInfo) w.uint32(10).string(r.versionInfo);
  for (const res of r.resources) w.uint32(18).bytes(res.any);
  w.uint32(34).string(r.typeUrl);
  w.uint32(42).string(r.nonce);
  controlPlane(w, 6, r.controlPlane);
  return toBuffer(w.finish());
}

/**
 * DeltaDiscoveryResponse from pre-encoded Resource messages (fields: system_version_info 1,
 * resources 2, type_url 4, nonce 5, removed_resources 6, control_plane 7).
 */
export function encodeDeltaDiscoveryResponse(r: {
  systemVersionInfo: string;
  typeUrl: string;
  nonce: string;
  resources: Iterable<{ deltaEncoding(): Uint8Array }>;
  removedResources: Iterable<string>;
  controlPlane?: string;
}): Buffer {
  const w = protobuf.Writer.create();
  if (r.systemVersionInfo) w.uint32(10).string(r.systemVersionInfo);
  for (const res of r.resources) w.uint32(18).bytes(res.deltaEncoding());
  w.uint32(34).string(r.typeUrl);
  w.uint32(42).string(r.nonce);
  for (const name of r.removedResources) w.uint32(50).string(name);
  controlPlane(w, 7, r.controlPlane);
  return toBuffer(w.finish());
}
