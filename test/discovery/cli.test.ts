// `catena lookup SERVICE` and `--watch`, as a child process against a real control server.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCatena, spawnCatena } from "../support/cli.js";
import { post, settled, startTestControl, type TestControl } from "../support/control.js";
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

async function waitFor(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 50));
  }
}
