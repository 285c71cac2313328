import { describe, expect, it } from "vitest";
import { VersionedResource } from "../cache/snapshot.js";
import { clusterLoadAssignment } from "../resources/cluster-load-assignment.js";
import { TYPE_URL } from "../type-urls.js";
import {
  decodeDeltaDiscoveryRequest,
  decodeDeltaDiscoveryResponse,
  decodeDiscoveryRequest,
  decodeDiscoveryResponse,
  encodeDeltaDiscoveryRequest,
  encodeDeltaDiscoveryResponse,
  encodeDiscoveryRequest,
  encodeDiscoveryResponse,
} from "./discovery.js";

const node = {
  id: "n1",
  cluster: "fw",
  metadata: { type: "firewall", port: 3, nested: { a: [true, null] } },
};

describe("discovery wire", () => {
  it("DiscoveryRequest round trips, node metadata as json", () => {
    const buf = encodeDiscoveryRequest({
      versionInfo: "v1",
      node,
      resourceNames: ["a", "b"],
      typeUrl: TYPE_URL.endpoint,
      responseNonce: "3",
      errorDetail: { code: 3, message: "bad" },
    });
    const d = decodeDiscoveryRequest(buf);
    expect(d).toEqual({
      ok: true,
      value: {
        versionInfo: "v1",
        node,
        resourceNames: ["a", "b"],
        typeUrl: TYPE_URL.endpoint,
        responseNonce: "3",
        errorDetail: { code: 3, message: "bad" },
      },
    });
  });

  it("DeltaDiscoveryRequest round trips", () => {
    const req = {
      typeUrl: TYPE_URL.cluster,
      resourceNamesSubscribe: ["*"],
      resourceNamesUnsubscribe: ["x"],
      initialResourceVersions: { a: "1" },
      responseNonce: "",
    };
    expect(decodeDeltaDiscoveryRequest(encodeDeltaDiscoveryRequest(req))).toEqual({ ok: true, value: req });
  });

  it("responses carry the cached Any bytes unchanged", () => {
    const r = new VersionedResource(clusterLoadAssignment({ clusterName: "web", endpoints: [] }));
    const sotw = decodeDiscoveryResponse(
      encodeDiscoveryResponse({
        versionInfo: "v",
        typeUrl: r.typeUrl,
        nonce: "1",
        resources: [r],
        controlPlane: "cp",
      }),
    );
    expect(sotw.ok && sotw.value.resources[0]?.typeUrl).toBe(TYPE_URL.endpoint);
    expect(sotw.ok && sotw.value.controlPlane).toBe("cp");
    const delta = decodeDeltaDiscoveryResponse(
      encodeDeltaDiscoveryResponse({
        systemVersionInfo: "s",
        typeUrl: r.typeUrl,
        nonce: "2",
        resources: [r],
        removedResources: ["gone"],
      }),
    );
    expect(delta.ok && delta.value).toMatchObject({
      nonce: "2",
      removedResources: ["gone"],
      resources: [{ name: "web", version: r.version, resource: { typeUrl: TYPE_URL.endpoint } }],
    });
  });

  it("undecodable bytes give an error, not an exception", () => {
    const d = decodeDiscoveryRequest(Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]));
    expect(d.ok).toBe(false);
  });
});
