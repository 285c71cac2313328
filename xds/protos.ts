// Loads the Envoy protos shipped in @grpc/grpc-js-xds once, on first use, so importing xds/ costs nothing.
import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, isAbsolute, join } from "node:path";
import protobuf from "protobufjs";

const PROTO_FILES = [
  "envoy/service/discovery/v3/discovery.proto",
  "envoy/service/status/v3/csds.proto",
  "envoy/config/listener/v3/listener.proto",
  "envoy/config/cluster/v3/cluster.proto",
  "envoy/config/endpoint/v3/endpoint.proto",
  "envoy/config/route/v3/route.proto",
  "envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto",
  "envoy/extensions/filters/network/rbac/v3/rbac.proto",
  "envoy/extensions/filters/network/local_ratelimit/v3/local_rate_limit.proto",
  "envoy/extensions/filters/network/connection_limit/v3/connection_limit.proto",
  "envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto",
  "envoy/extensions/filters/http/router/v3/router.proto",
  "envoy/extensions/filters/http/rbac/v3/rbac.proto",
  "envoy/extensions/transport_sockets/tls/v3/tls.proto",
  "envoy/extensions/transport_sockets/tls/v3/secret.proto",
  "envoy/extensions/filters/listener/proxy_protocol/v3/proxy_protocol.proto",
  "envoy/extensions/transport_sockets/proxy_protocol/v3/upstream_proxy_protocol.proto",
  "envoy/extensions/transport_sockets/raw_buffer/v3/raw_buffer.proto",
  "envoy/extensions/upstreams/http/v3/http_protocol_options.proto",
  "xds/type/v3/typed_struct.proto",
  "google/rpc/status.proto",
];

let root: protobuf.Root | undefined;
const extraDirs: string[] = [];
const extraFiles: string[] = [];

function includeDirs(): string[] {
  const require = createRequire(import.meta.url);
  const xdsPkg = dirname(require.resolve("@grpc/grpc-js-xds/package.json"));
  // descriptor.proto (imported by the validate/udpa annotations) ships with protobufjs itself.
  const protobufPkg = dirname(require.resolve("protobufjs/package.json"));
  return [
    join(xdsPkg, "deps", "envoy-api"),
    join(xdsPkg, "deps", "xds"),
    join(xdsPkg, "deps", "googleapis"),
    join(xdsPkg, "deps", "protoc-gen-validate"),
    protobufPkg,
  ];
}

/** The protobufjs Root holding every message type xds/ uses; loaded on first call. */
export function protoRoot(): protobuf.Root {
  if (root) return root;
  const dirs = includeDirs();
  const r = new protobuf.Root();
  r.resolvePath = (_origin, target) => {
    if (isAbsolute(target)) return target;
    for (const dir of [...extraDirs, ...dirs]) {
      const candidate = join(dir, target);
      if (existsSync(candidate)) return candidate;
    }
    return target;
  };
  r.loadSync([...PROTO_FILES, ...extraFiles], { keepCase: true });
  r.resolveAll();
  root = r;
  return r;
}

/**
 * Adds protos of types Envoy lacks (e.g. a project's own `*.v1` configs), so they encode from
 * {"@type": url, ...} objects and decode to JSON like Envoy's own. Files are relative to one of
 * includeDirs. Idempotent per file.
 */
export function addProtoFiles(options: { includeDirs: string[]; files: string[] }): void {
  for (const d of options.includeDirs) if (!extraDirs.includes(d)) extraDirs.push(d);
  const fresh = options.files.filter((f) => !extraFiles.includes(f));
  extraFiles.push(...fresh);
  if (root && fresh.length > 0) {
    root.loadSync(fresh, { keepCase: true });
    root.resolveAll();
  }
}

/** A message type by its full name (no leading dot), e.g. "envoy.config.cluster.v3.Cluster". */
export function messageType(fullName: string): protobuf.Type {
  return protoRoot().lookupType(fullName);
}

/** Like messageType, but undefined for names the loaded protos do not define. */
export function findMessageType(fullName: string): protobuf.Type | undefined {
  try {
    return protoRoot().lookupType(fullName);
  } catch {
    return undefined;
  }
}

/**
 * A strict reader: protobufjs's Buffer reader silently truncates a string that runs past the end,
 * so bytes go through the plain reader, which rejects them.
 */
export function strictReader(data: Uint8Array): protobuf.Reader {
  return new protobuf.Reader(
    Buffer.isBuffer(data) ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength) : data,
  );
}
