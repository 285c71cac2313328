// A container runtime's side of CNI, as libcni does it: plugins found on CNI_PATH and run with the
// spec's environment and the network configuration on stdin; a network list runs ADD in order
// (each plugin gets the previous result as prevResult), DEL in reverse with the cached result,
// CHECK in order with the cached result. Plus network namespaces for tests that need them.
import { execFile, spawn } from "node:child_process";
import { access, chmod, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { REPO } from "../../support/cli.js";

const run = promisify(execFile);

export interface PluginRun {
  code: number | null;
  stdout: string;
  stderr: string;
  /** stdout as JSON, when it is JSON. */
  json?: Record<string, unknown>;
}

export interface RuntimeConf {
  containerId: string;
  netns: string;
  ifname: string;
  args?: string;
  runtimeConfig?: Record<string, unknown>;
}

export type PluginConf = Record<string, unknown> & { type: string };

export interface NetworkList {
  cniVersion: string;
  name: string;
  plugins: PluginConf[];
}

/** A directory holding an executable `catena-cni` (the built bin under CATENA_TEST_BUILT, else the sources via tsx). */
export async function catenaCniDir(): Promise<{ dir: string; dispose(): Promise<void> }> {
  const dir = await mkdtemp(join(tmpdir(), "catena-cni-bin-"));
  const target = process.env.CATENA_TEST_BUILT
    ? `exec "${process.execPath}" "${join(REPO, "dist/services/cni/main.js")}" "$@"`
    : `cd "${REPO}" && exec "${process.execPath}" --import tsx "${join(REPO, "services/cni/main.ts")}" "$@"`;
  await writeFile(join(dir, "catena-cni"), `#!/bin/sh\n${target}\n`);
  await chmod(join(dir, "catena-cni"), 0o755);
  return { dir, dispose: () => rm(dir, { recursive: true, force: true }) };
}

export function execPlugin(path: string, env: Record<string, string>, stdin: string): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env, stdio: ["pipe", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => {
      stdout += d.toString();
    });
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
    });
    child.on("error", reject);
    child.on("close", (code) => {
      let json: Record<string, unknown> | undefined;
      try {
        json = stdout.trim() ? (JSON.parse(stdout) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      resolve({ code, stdout, stderr, ...(json && { json }) });
    });
    child.stdin.end(stdin);
  });
}

export class CniRuntime {
  readonly cniPath: string[];
  readonly extraEnv: Record<string, string>;

  constructor(cniPath: string[], extraEnv: Record<string, string> = {}) {
    this.cniPath = cniPath;
    this.extraEnv = extraEnv;
  }

  #env(command: string, rt: Partial<RuntimeConf>): Record<string, string> {
    return {
      PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
      CNI_COMMAND: command,
      CNI_PATH: this.cniPath.join(":"),
      ...(rt.containerId && { CNI_CONTAINERID: rt.containerId }),
      ...(rt.netns && { CNI_NETNS: rt.netns }),
      ...(rt.ifname && { CNI_IFNAME: rt.ifname }),
      ...(rt.args && { CNI_ARGS: rt.args }),
      ...this.extraEnv,
    };
  }

  /** One plugin, as libcni invokes it: the list's name and version injected into its config. */
  async invoke(
    command: string,
    list: NetworkList,
    plugin: PluginConf,
    rt: Partial<RuntimeConf>,
    prevResult?: unknown,
  ): Promise<PluginRun> {
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (prevResult !== undefined) conf.prevResult = prevResult;
    if (rt.runtimeConfig) conf.runtimeConfig = rt.runtimeConfig;
    // As libcni: the first CNI_PATH directory holding the plugin's type.
    const found = await firstExisting(this.cniPath.map((d) => join(d, plugin.type)));
    if (!found) throw new Error(`plugin ${plugin.type} not found in ${this.cniPath.join(":")}`);
    return execPlugin(found, this.#env(command, rt), JSON.stringify(conf));
  }

  async add(list: NetworkList, rt: RuntimeConf): Promise<Record<string, unknown>> {
    let prev: Record<string, unknown> | undefined;
    for (const plugin of list.plugins) {
      const r = await this.invoke("ADD", list, plugin, rt, prev);
      if (r.code !== 0) throw new Error(`${plugin.type} ADD failed (${r.code}): ${r.stdout} ${r.stderr}`);
      prev = r.json;
    }
    return prev ?? {};
  }

  /** DEL in reverse order; every plugin runs even when one fails (as libcni does), first failure reported. */
  async del(list: NetworkList, rt: RuntimeConf, cached?: unknown): Promise<PluginRun[]> {
    const out: PluginRun[] = [];
    for (const plugin of [...list.plugins].reverse())
      out.push(await this.invoke("DEL", list, plugin, rt, cached));
    return out;
  }

  /** CHECK in order; stops at the first failure, which it returns. */
  async check(list: NetworkList, rt: RuntimeConf, cached: unknown): Promise<PluginRun | undefined> {
    for (const plugin of list.plugins) {
      const r = await this.invoke("CHECK", list, plugin, rt, cached);
      if (r.code !== 0) return r;
    }
    return undefined;
  }
}

async function firstExisting(paths: string[]): Promise<string | undefined> {
  for (const p of paths) {
    try {
      await access(p);
      return p;
    } catch {
      // next directory
    }
  }
  return undefined;
}

// --- network namespaces ---------------------------------------------------------------------------

/** Fails loudly when this process cannot make network namespaces (CI runs as root). */
export async function requireNetns(): Promise<void> {
  const probe = `catena-probe-${process.pid}`;
  try {
    await run("ip", ["netns", "add", probe]);
    await run("ip", ["netns", "del", probe]);
  } catch (err) {
    throw new Error(
      `these tests need root and iproute2 (ip netns add failed): ${String((err as { stderr?: unknown }).stderr ?? err)}`,
    );
  }
}

export async function addNetns(name: string): Promise<string> {
  await run("ip", ["netns", "add", name]);
  await run("ip", ["-n", name, "link", "set", "lo", "up"]);
  return `/var/run/netns/${name}`;
}

export async function delNetns(name: string): Promise<void> {
  await run("ip", ["netns", "del", name]).catch(() => undefined);
}

export async function deleteLink(name: string): Promise<void> {
  await run("ip", ["link", "del", name]).catch(() => undefined);
}

export async function ip(args: string[]): Promise<string> {
  return (await run("ip", args)).stdout;
}

export async function inNetns(netns: string, command: string[]): Promise<{ code: number; stdout: string }> {
  try {
    const { stdout } = await run("ip", ["netns", "exec", netns, ...command], { timeout: 10_000 });
    return { code: 0, stdout };
  } catch (err) {
    const e = err as { code?: number; stdout?: string };
    return { code: typeof e.code === "number" ? e.code : 1, stdout: e.stdout ?? "" };
  }
}
