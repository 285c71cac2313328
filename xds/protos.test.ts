import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { addProtoFiles, findMessageType, protoRoot } from "./protos.js";
import { decodeAny } from "./resource.js";
import { listenerType } from "./resource-types/listener.js";
import { tcpProxyListener } from "./resources/listener.js";
import { typedConfig } from "./resources/typed-config.js";

describe("protos", () => {
  it("loads the Envoy types xds/ uses", () => {
    protoRoot();
    for (const name of [
      "envoy.config.listener.v3.Listener",
      "envoy.extensions.filters.network.rbac.v3.RBAC",
      "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
      "envoy.extensions.filters.network.connection_limit.v3.ConnectionLimit",
      "envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
      "envoy.service.status.v3.ClientStatusResponse",
      "xds.type.v3.TypedStruct",
    ]) {
      expect(findMessageType(name), name).toBeDefined();
    }
    expect(findMessageType("acme.Nope")).toBeUndefined();
  });

  it("added protos encode and decode like Envoy's", () => {
    const dir = mkdtempSync(join(tmpdir(), "xds-protos-"));
    writeFileSync(
      join(dir, "shape.proto"),
      'syntax = "proto3";\npackage testpkg.v1;\nmessage ByteRate { uint64 bytes_per_second = 1; string name = 2; }\n',
    );
    addProtoFiles({ includeDirs: [dir], files: ["shape.proto"] });
    const url = "type.googleapis.com/testpkg.v1.ByteRate";
    const l = tcpProxyListener({
      name: "l",
      address: "127.0.0.1",
      port: 1,
      filters: [
        { name: "catena.shaper", typedConfig: typedConfig(url, { bytes_per_second: 1000, name: "x" }) },
      ],
      tcpProxy: { cluster: "c" },
    });
    const d = listenerType.decode(decodeAny(l.any)?.value ?? new Uint8Array());
    expect(d.ok && d.value).toMatchObject({
      filter_chains: [
        { filters: [{ typed_config: { "@type": url, bytes_per_second: 1000, name: "x" } }, {}] },
      ],
    });
  });
});
