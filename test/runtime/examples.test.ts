// The patterns in deploy/examples: every manifest validates, every folder says what it is, and the
// self-registering workloads (the FaaS function, the VM script) join a Service when they start and
// leave it when they exit.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../../services/cli/cli.js";
import { REPO } from "../support/cli.js";
import { post, startTestControl, type TestControl } from "../support/control.js";
import { freePort, waitFor } from "./support.js";

const EXAMPLES = join(REPO, "deploy/examples");

async function exampleDirs(): Promise<string[]> {
  const entries = await readdir(EXAMPLES, { withFileTypes: true });
  return entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

describe("deploy/examples", () => {
  it("holds the patterns, each with a manifest and a README", async () => {
    const dirs = await exampleDirs();
    expect(dirs).toEqual(
      expect.arrayContaining([
        "canary",
        "edge-chain",
        "faas",
        "isolated-networks",
        "site-to-site-vpn",
        "vm-baremetal",
      ]),
    );
    for (const dir of dirs) {
      const files = await readdir(join(EXAMPLES, dir));
      expect(files, dir).toContain("README.md");
      expect(
        files.some((f) => f.endsWith(".yaml")),
        dir,
      ).toBe(true);
    }
  });

  it("every manifest validates offline (each pattern on its own: several reuse a Network's name)", async () => {
    for (const dir of await exampleDirs()) {
      const out: string[] = [];
      const err: string[] = [];
      const io = {
        out: (s: string) => out.push(s),
        err: (s: string) => err.push(s),
        stdin: async () => "",
        interactive: false,
      };
      const code = await runCli(["validate", "-f", join(EXAMPLES, dir)], io);
      expect(err, dir).toEqual([]);
      expect(code, dir).toBe(0);
      expect(out.join("\n"), dir).toMatch(/document\(s\) valid/);
    }
  });
});

describe("self-registering workloads", () => {
  let control: TestControl;
  const children: ChildProcess[] = [];

  beforeAll(async () => {
    control = await startTestControl();
    for (const file of ["faas/service.yaml", "vm-baremetal/workloads.yaml"]) {
      const res = await post(control.url, "/v1/apply", await readFile(join(EXAMPLES, file), "utf8"));
      expect(res.status, JSON.stringify(res.body)).toBe(200);
    }
  });

  afterAll(async () => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await control?.stop();
  });

  /** The Service's self-registered endpoints (a lookup would answer the chain's ingress instead). */
  async function registered(service: string): Promise<{ address: string; port: number }[]> {
    return control.server.registry.registrations
      .list(service)
      .map((e) => ({ address: e.address, port: e.port }));
  }

  function start(command: string, args: string[], env: Record<string, string>): ChildProcess {
    const child = spawn(command, args, { cwd: REPO, env: { ...process.env, ...env }, stdio: "pipe" });
    children.push(child);
    return child;
  }

  it("the FaaS function registers when it starts, serves, and leaves when it exits", async () => {
    const address = "127.70.200.7";
    const port = await freePort(address);
    const fn = start(process.execPath, ["deploy/examples/faas/function.mjs"], {
      CATENA_SERVER: control.url,
      ADDRESS: address,
      PORT: String(port),
      TTL: "30",
    });
    const seen = await waitFor("the registration", async () => {
      const list = await registered("thumbnailer");
      return list.length > 0 ? list : undefined;
    });
    expect(seen.map((e) => `${e.address}:${e.port}`)).toEqual([`${address}:${port}`]);
    expect(await (await fetch(`http://${address}:${port}/cat.png`)).text()).toMatch(/thumbnail of \/cat.png/);

    fn.kill("SIGTERM");
    const [code] = await once(fn, "exit");
    expect(code).toBe(0);
    // Deregistered before exiting: gone at once, not after its TTL.
    expect(await registered("thumbnailer")).toEqual([]);
  });

  it("the VM script registers with curl, renews, and deregisters on SIGTERM", async () => {
    const script = start("sh", ["deploy/examples/vm-baremetal/register.sh", "erp", "127.69.0.31", "8080"], {
      CATENA_SERVER: control.url,
      TTL: "3",
    });
    let out = "";
    script.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    await waitFor("the registration", async () => (await registered("erp")).length === 1);
    // Outlives its TTL: the heartbeat keeps it.
    await new Promise((r) => setTimeout(r, 4000));
    expect((await registered("erp")).map((e) => e.address)).toEqual(["127.69.0.31"]);
    script.kill("SIGTERM");
    await once(script, "exit");
    expect(out).toMatch(/deregistered/);
    expect(await registered("erp")).toEqual([]);
  }, 30_000);
});
