// The `catena` command end to end against a running control server: apply, get, describe,
// delete, validate, with the exit statuses of the CLI contract.
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCatena } from "../support/cli.js";
import { startTestControl, type TestControl } from "../support/control.js";

let control: TestControl;
let dir: string;

beforeAll(async () => {
  control = await startTestControl();
  dir = await mkdtemp(join(tmpdir(), "catena-cli-"));
});

afterAll(async () => {
  await control?.stop();
  await rm(dir, { recursive: true, force: true });
});

const catena = (...args: string[]) => runCatena(["--server", control.url, ...args]);

describe("catena CLI", () => {
  it("applies the example chain, then gets it as JSON and as a table", async () => {
    const applied = await catena("apply", "-f", "deploy/examples/edge-chain/chain.yaml");
    expect(applied.stderr).toBe("");
    expect(applied.code).toBe(0);
    expect(applied.stdout).toContain("servicechain/web-edge created");

    const json = await catena("get", "ServiceFunctions", "-o", "json");
    expect(json.code).toBe(0);
    const items = (JSON.parse(json.stdout) as { items: { metadata: { name: string } }[] }).items;
    expect(items.map((i) => i.metadata.name)).toEqual(["edge-fw", "edge-lb", "edge-qos"]);

    const table = await catena("get", "servicechain");
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/NAME\s+SERVICE\s+HOPS/);
    expect(table.stdout).toContain("edge-fw > edge-qos > edge-lb");
  });

  it("describes an object with its conditions", async () => {
    const res = await catena("describe", "network", "edge");
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("Name:              edge");
    expect(res.stdout).toContain("cidr: 127.64.0.0/16");
    expect(res.stdout).toMatch(/Accepted/);
  });

  it("exits 1 with `not found` for a missing object, and 2 for bad usage", async () => {
    const missing = await catena("get", "servicechain", "nope");
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain("not found");
    expect((await catena("get", "widgets")).code).toBe(2);
    expect((await catena("frobnicate")).code).toBe(2);
    expect((await catena("get", "networks", "-o", "xml")).code).toBe(2);
  });

  it("shows a rejected apply as file:line:column Kind/name field: message and exits 1", async () => {
    const file = join(dir, "chain.yaml");
    await writeFile(
      file,
      [
        "apiVersion: catena.dev/v1alpha1",
        "kind: ServiceChain",
        "metadata: {name: web-edge}",
        "spec:",
        "  service: web",
        "  ingress: {port: 8080}",
        "  hops:",
        "    - function: edge-fw",
        "    - function: edge-qoss",
        "",
      ].join("\n"),
    );
    const res = await catena("apply", "-f", file);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(
      `${file}:9:17 ServiceChain/web-edge spec.hops[1].function: ServiceFunction "edge-qoss" does not exist`,
    );
  });

  it("validates offline, pointing at the bad field", async () => {
    const file = join(dir, "net.yaml");
    await writeFile(
      file,
      "apiVersion: catena.dev/v1alpha1\nkind: Network\nmetadata: {name: n1}\nspec:\n  cidr: 10.0.0.0/99\n",
    );
    const bad = await runCatena(["validate", "-f", file], { env: { CATENA_SERVER: "http://127.0.0.1:9" } });
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain(`${file}:5:9 Network/n1 spec.cidr`);
    const good = await runCatena(["validate", "-f", "deploy/examples/edge-chain/chain.yaml"]);
    expect(good.code).toBe(0);
    expect(good.stdout).toContain("6 document(s) valid");
  });

  it("deletes by kind and name and from a file", async () => {
    const one = await catena("delete", "servicechain", "web-edge");
    expect(one.code).toBe(0);
    expect((await catena("get", "servicechain", "web-edge")).code).toBe(1);
    const all = await catena("delete", "-f", "deploy/examples/edge-chain/chain.yaml");
    // The chain is gone already: deleting it again is a rejected request.
    expect(all.code).toBe(1);
    expect(all.stderr).toMatch(/not found/);
    const rest = await catena("delete", "--ignore-not-found", "-f", "deploy/examples/edge-chain/chain.yaml");
    expect(rest.code).toBe(0);
    expect(rest.stdout).toContain("servicefunction/edge-fw deleted");
    expect((await catena("get", "network", "edge")).code).toBe(1);
  });

  it("changes nothing with --dry-run", async () => {
    const file = join(dir, "dry.yaml");
    await writeFile(
      file,
      "apiVersion: catena.dev/v1alpha1\nkind: Network\nmetadata: {name: dry}\nspec: {cidr: 10.77.0.0/16}\n",
    );
    const res = await catena("apply", "--dry-run", "-f", file);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("network/dry created (dry run)");
    expect((await catena("get", "network", "dry")).code).toBe(1);
  });

  it("waits for Ready with --wait, and gives up after --timeout with exit 1", async () => {
    const file = join(dir, "wait.yaml");
    await writeFile(
      file,
      "apiVersion: catena.dev/v1alpha1\nkind: Network\nmetadata: {name: waited}\nspec: {cidr: 10.78.0.0/16}\n",
    );
    const ok = await catena("apply", "--wait", "-f", file);
    expect(ok.code).toBe(0);
    expect(ok.stderr).toContain("all 1 object(s) Ready");
    // No function instance runs here, so a chain never becomes Ready.
    const chain = await catena(
      "apply",
      "--wait",
      "--timeout",
      "1s",
      "-f",
      "deploy/examples/edge-chain/chain.yaml",
    );
    expect(chain.code).toBe(1);
    expect(chain.stderr).toContain("timed out waiting for Ready");
  });

  it("prints the JSON Schema and the version", async () => {
    const schema = await runCatena(["schema"]);
    expect(schema.code).toBe(0);
    expect(JSON.parse(schema.stdout)).toHaveProperty("$schema");
    const version = await runCatena(["version"]);
    expect(version.stdout).toMatch(/^catena \d+\.\d+\.\d+/);
  });
});
