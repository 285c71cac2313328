// `catena function TYPE` as a real process: it starts, reports its admin address, answers /healthz and
// /readyz once its xDS server has sent config, and drains on SIGTERM.
import { once } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCatena, spawnCatena } from "../support/cli.js";
import { httpStatus } from "../support/http.js";
import { uniqueRoot } from "../support/nats.js";
import {
  type ChainSpec,
  chainSnapshots,
  freePort,
  publish,
  startXds,
  until,
  type XdsServer,
} from "./support/harness.js";

const ADDR = "127.64.7.1";
let xds: XdsServer;

beforeAll(async () => {
  xds = await startXds();
});

afterAll(async () => {
  await xds?.close();
});

describe("catena function", () => {
  it("firewall starts as a process, answers /healthz, is ready once configured, and stops on SIGTERM", async () => {
    const port = await freePort(ADDR);
    const spec: ChainSpec = {
      name: "cli",
      port,
      service: "web",
      placement: "separate",
      hops: [{ instances: [{ id: "cli-fw", address: ADDR }], filters: () => [] }],
      backends: [{ address: "127.64.7.10", port: 9 }],
    };
    publish(xds, chainSnapshots(spec), ["cli-fw"]);
    const child = spawnCatena(
      ["function", "firewall", "--function", "edge-fw", "--node-id", "cli-fw", "--xds-addr", xds.address],
      { CATENA_ADDRESS: ADDR, CATENA_ADMIN_ADDR: `${ADDR}:0`, CATENA_NATS_PREFIX: uniqueRoot() },
    );
    let stderr = "";
    child.stderr?.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    try {
      await until(
        () => /admin http:\/\/\S+/.test(stderr),
        () => `the admin address (stderr: ${stderr})`,
        20_000,
      );
      const admin = (/admin (http:\/\/\S+)/.exec(stderr) as RegExpExecArray)[1];
      expect(await httpStatus(`${admin}/healthz`)).toBe(200);
      let ready = 0;
      for (let i = 0; i < 100 && ready !== 200; i++) {
        ready = await httpStatus(`${admin}/readyz`);
        if (ready !== 200) await new Promise((r) => setTimeout(r, 50));
      }
      expect(ready).toBe(200);
      const metrics = await (await fetch(`${admin}/metrics`)).text();
      expect(metrics).toContain("catena_connections_active");
      const node = xds.server.status.node("cli-fw")?.node;
      expect(node?.metadata).toMatchObject({
        type: "firewall",
        address: ADDR,
        admin: admin?.slice("http://".length),
      });
      expect(node?.cluster).toBe("edge-fw");
    } finally {
      child.kill("SIGTERM");
      const [code] = await once(child, "exit");
      expect(code).toBe(0);
    }
  });

  it("an unknown type is bad usage (exit 2)", async () => {
    const r = await runCatena(["function", "nope", "--function", "f", "--node-id", "n"]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown function type "nope"/);
  });

  it("a missing node id is bad usage (exit 2)", async () => {
    const r = await runCatena(["function", "qos", "--function", "f"], { env: { CATENA_NODE_ID: "" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--node-id/);
  });
});
