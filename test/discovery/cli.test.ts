// `catena lookup SERVICE` and `--watch`, as a child process against a real control server.
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCatena, spawnCatena } from "../support/cli.js";
import { getJson, post, settled, startTestControl, type TestControl } from "../support/control.js";
import { apply, BASE_MANIFESTS } from "./support.js";

describe("catena lookup", () => {
  let control: TestControl;
  beforeAll(async () => {
    control = await startTestControl();
    await apply(control, BASE_MANIFESTS);
    await settled(control);
  }, 30_000);
  afterAll(() => control?.stop());

  it("prints the healthy endpoints as a table, or JSON with -o json", async () => {
    const table = await runCatena(["lookup", "web", "--server", control.url]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/ADDRESS\s+PORT\s+WEIGHT\s+PORT NAME\s+SOURCE/);
    expect(table.stdout).toMatch(/127\.0\.0\.2\s+9002\s+3\s+http\s+static/);
    const json = await runCatena(["lookup", "web", "-o", "json", "--server", control.url]);
    expect(JSON.parse(json.stdout)).toMatchObject({
      service: "web",
      endpoints: [{ port: 9001 }, { port: 9002 }],
    });
  }, 30_000);

  it("a missing service exits 1 with not found", async () => {
    const r = await runCatena(["lookup", "nope", "--server", control.url]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("not found");
  }, 30_000);

  it("--watch prints again when the endpoints change", async () => {
    const child = spawnCatena(["lookup", "web", "--watch", "-o", "json", "--server", control.url]);
    let out = "";
    child.stdout?.on("data", (d: Buffer) => {
      out += d.toString();
    });
    const lines = () => out.split("\n").filter((l) => l.startsWith("{"));
    try {
      await waitFor(() => lines().length >= 1, 20_000);
      await post(control.url, "/v1/services/web/endpoints", {
        address: "127.0.0.5",
        port: 9005,
        ttlSeconds: 30,
      });
      await waitFor(() => lines().length >= 2, 10_000);
      const second = JSON.parse(lines()[1] as string) as { endpoints: { address: string }[] };
      expect(second.endpoints.map((e) => e.address)).toContain("127.0.0.5");
    } finally {
      child.kill("SIGTERM");
    }
  }, 40_000);
});

describe("catena function discovery", () => {
  let control: TestControl;
  beforeAll(async () => {
    control = await startTestControl();
    await apply(control, BASE_MANIFESTS);
    await settled(control);
  }, 30_000);
  afterAll(() => control?.stop());

  it("runs the DNS server fed over xDS, and registers as an instance of its ServiceFunction", async () => {
    const child = spawnCatena([
      "function",
      "discovery",
      "--function",
      "dns",
      "--node-id",
      "dns-cli-1",
      "--xds-addr",
      control.server.xdsAddr,
      "--dns-addr",
      "127.0.0.1:0",
      "--ttl",
      "3",
    ]);
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    try {
      await waitFor(() => /DNS 127\.0\.0\.1:\d+/.test(err), 20_000);
      const port = (/DNS 127\.0\.0\.1:(\d+)/.exec(err) as RegExpExecArray)[1] as string;
      const deadline = Date.now() + 10_000;
      let answer = "";
      while (!answer.includes("127.0.0.2") && Date.now() < deadline) {
        answer = (
          await run("dig", ["@127.0.0.1", "-p", port, "+short", "+time=1", "+tries=1", "web.catena."]).catch(
            () => ({ stdout: "" }),
          )
        ).stdout;
        if (!answer.includes("127.0.0.2")) await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer).toContain("127.0.0.2");
      const instances = (await getJson(control.url, "/v1/instances")).body as {
        items: { id: string; type: string }[];
      };
      expect(instances.items).toContainEqual(expect.objectContaining({ id: "dns-cli-1", type: "discovery" }));
    } finally {
      child.kill("SIGTERM");
    }
  }, 40_000);

  it("--dns-workers 2: worker processes share the port, each answers from the same zone", async () => {
    const child = spawnCatena([
      "function",
      "discovery",
      "--function",
      "dns",
      "--node-id",
      "dns-cli-2",
      "--xds-addr",
      control.server.xdsAddr,
      "--dns-addr",
      "127.0.0.1:0",
      "--dns-workers",
      "2",
    ]);
    let err = "";
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
    });
    try {
      await waitFor(() => /DNS 127\.0\.0\.1:\d+/.test(err), 30_000);
      const port = (/DNS 127\.0\.0\.1:(\d+)/.exec(err) as RegExpExecArray)[1] as string;
      const admin = (/admin (http:\/\/[\d.:]+)/.exec(err) as RegExpExecArray)[1] as string;
      const deadline = Date.now() + 10_000;
      let answer = "";
      while (!answer.includes("127.0.0.2") && Date.now() < deadline) {
        answer = (
          await run("dig", ["@127.0.0.1", "-p", port, "+short", "+time=1", "+tries=1", "web.catena."]).catch(
            () => ({
              stdout: "",
            }),
          )
        ).stdout;
        if (!answer.includes("127.0.0.2")) await new Promise((r) => setTimeout(r, 100));
      }
      expect(answer).toContain("127.0.0.2");
      // Many queries: both workers answer them all; over TCP too.
      for (let i = 0; i < 20; i++) {
        const a = await run("dig", [
          "@127.0.0.1",
          "-p",
          port,
          "+short",
          "+time=1",
          "+tries=2",
          "web.catena.",
        ]);
        expect(a.stdout.trim().split("\n").sort()).toEqual(["127.0.0.1", "127.0.0.2"]);
      }
      const tcp = await run("dig", ["@127.0.0.1", "-p", port, "+short", "+tcp", "web.catena."]);
      expect(tcp.stdout).toContain("127.0.0.1");
      await waitFor(() => true, 0);
      const stats = await eventuallyJson(`${admin}/stats`, (s: { answered: number; workers: number }) =>
        s.answered >= 21 ? s : undefined,
      );
      expect(stats.workers).toBe(2);
    } finally {
      child.kill("SIGTERM");
    }
  }, 60_000);
});

async function eventuallyJson<T, R>(url: string, check: (body: T) => R | undefined): Promise<R> {
  const deadline = Date.now() + 5000;
  for (;;) {
    const r = check((await (await fetch(url)).json()) as T);
    if (r !== undefined) return r;
    if (Date.now() > deadline) throw new Error(`${url}: condition not met`);
    await new Promise((res) => setTimeout(res, 200));
  }
}

const run = promisify(execFile);

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}
