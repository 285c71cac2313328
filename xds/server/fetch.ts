// Fetch* (unary) discovery: one request, the current resources, no stream state.
import { status as grpcStatus, type ServerUnaryCall, type sendUnaryData } from "@grpc/grpc-js";
import { versionOf } from "../cache/snapshot.js";
import { decodeDiscoveryRequest, encodeDiscoveryResponse } from "../wire/discovery.js";
import type { StreamDeps } from "./stream-session.js";

export function handleFetch(
  deps: StreamDeps,
  typeUrl: string,
  call: ServerUnaryCall<Buffer, Buffer>,
  callback: sendUnaryData<Buffer>,
): void {
  const decoded = decodeDiscoveryRequest(call.request);
  if (!decoded.ok) {
    callback({ code: grpcStatus.INVALID_ARGUMENT, details: decoded.error });
    return;
  }
  const req = decoded.value;
  if (req.typeUrl && req.typeUrl !== typeUrl) {
    callback({
      code: grpcStatus.INVALID_ARGUMENT,
      details: `this service serves only ${typeUrl}, not "${req.typeUrl}"`,
    });
    return;
  }
  if (!req.node?.id) {
    callback({ code: grpcStatus.INVALID_ARGUMENT, details: "DiscoveryRequest must carry node with an id" });
    return;
  }
  const snapshot = deps.cache.snapshot(deps.cache.nodeKey(req.node));
  if (!snapshot) {
    callback({ code: grpcStatus.UNAVAILABLE, details: `no configuration for node "${req.node.id}" yet` });
    return;
  }
  const all = snapshot.resources(typeUrl);
  const names = req.resourceNames.filter((n) => n !== "*");
  const wildcard = req.resourceNames.length === 0 || req.resourceNames.includes("*");
  const resources = wildcard ? [...all.values()] : names.flatMap((n) => all.get(n) ?? []);
  const version = wildcard ? snapshot.version(typeUrl) : versionOf(resources);
  callback(
    null,
    encodeDiscoveryResponse({
      versionInfo: version,
      typeUrl,
      nonce: "",
      resources,
      controlPlane: deps.controlPlaneId,
    }),
  );
}
