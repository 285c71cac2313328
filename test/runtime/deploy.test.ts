// deploy/kubernetes and deploy/docker cannot run here (no cluster, no Docker engine), so they are
// cross-checked against the code: they parse, and every image, command, flag, environment variable
// and port they name is one the code has, with one image, unchanged, for every Catena container.
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { FUNCTION_DEFAULTS } from "../../functions/sdk/environment.js";
import { buildProgram } from "../../services/cli/cli.js";
import { UP_DEFAULTS } from "../../services/cli/commands/up.js";
import { DEFAULTS } from "../../services/control/environment.js";
import { BUILTIN_FUNCTION_TYPES } from "../../services/control/model/hop-configs.js";
import { validateManifests } from "../../services/control/model/index.js";
import { REPO } from "../support/cli.js";

type Json = Record<string, unknown>;
const run = promisify(execFile);
const VERSION = (JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { version: string })
  .version;
const CATENA_IMAGE = `catena:${VERSION}`;
/** Function types a `catena function` runs: every built-in. */
const RUNNABLE_TYPES: readonly string[] = BUILTIN_FUNCTION_TYPES;

async function yamlDocuments(file: string): Promise<Json[]> {
  const text = await readFile(join(REPO, file), "utf8");
  const docs = parseAllDocuments(text, { merge: true });
  for (const d of docs) expect(d.errors.map((e) => `${file}: ${e.message}`)).toEqual([]);
  return docs.map((d) => d.toJSON() as Json).filter((d) => d !== null);
}

/** Every CATENA_* variable the code reads (its env modules and the odd direct read), from the sources. */
async function environmentReads(): Promise<Set<string>> {
  const names = new Set<string>();
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(join(REPO, dir), { withFileTypes: true })) {
      const path = join(dir, e.name);
      if (e.isDirectory()) await walk(path);
      else if (e.name.endsWith(".ts") && !e.name.endsWith(".test.ts")) {
        const text = await readFile(join(REPO, path), "utf8");
        for (const m of text.matchAll(/\benv(?:\.|\[")(CATENA_[A-Z_]+)/g)) names.add(m[1] as string);
      }
    }
  };
  await Promise.all(["services", "functions", "xds"].map(walk));
  return names;
}

/** Variables the FaaS example reads (it is plain JS: `process.env.X`). */
async function faasEnvironment(): Promise<Set<string>> {
  const text = await readFile(join(REPO, "deploy/examples/faas/function.mjs"), "utf8");
  return new Set([...text.matchAll(/process\.env\.([A-Z_]+)/g)].map((m) => m[1] as string));
}

function subcommand(program: Command, name: string): Command | undefined {
  return program.commands.find((c) => c.name() === name);
}

function flagsOf(cmd: Command, program: Command): Set<string> {
  const out = new Set<string>();
  for (const o of [...cmd.options, ...program.options]) {
    if (o.long) out.add(o.long);
    if (o.short) out.add(o.short);
  }
  return out;
}

/** The port of a `--*-addr HOST:PORT` flag value. */
function portOf(addr: string): number {
  return Number(addr.slice(addr.lastIndexOf(":") + 1));
}

interface Container {
  where: string;
  image: string;
  /** Replaces the image's entrypoint (k8s `command`, compose `entrypoint`). */
  entrypoint: string[] | undefined;
  /** Arguments to the entrypoint (k8s `args`, compose `command`). */
  args: string[];
  env: Record<string, string | undefined>;
  ports: number[];
}

/** Checks one Catena container; returns the ports it listens on by its flags and defaults. */
function checkCatenaContainer(c: Container, env: Set<string>, faasEnv: Set<string>): number[] {
  expect(c.image, c.where).toBe(CATENA_IMAGE);
  if (c.entrypoint) {
    // Another program of the same image: the FaaS example, which the Dockerfile copies in.
    expect(c.entrypoint, c.where).toEqual(["node", "deploy/examples/faas/function.mjs"]);
    expect(existsSync(join(REPO, "deploy/examples/faas/function.mjs"))).toBe(true);
    for (const name of Object.keys(c.env)) expect(faasEnv, `${c.where} env ${name}`).toContain(name);
    return [Number(c.env.PORT ?? 8080)];
  }
  const program = buildProgram({
    out: () => undefined,
    err: () => undefined,
    stdin: async () => "",
    interactive: false,
  });
  const [name, ...rest] = c.args;
  const cmd = subcommand(program, name as string);
  expect(cmd, `${c.where}: catena ${name}`).toBeDefined();
  const flags = flagsOf(cmd as Command, program);
  const listens: number[] = [];
  const positional: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = rest[i] as string;
    if (!arg.startsWith("-")) {
      positional.push(arg);
      continue;
    }
    expect(flags, `${c.where}: catena ${name} ${arg}`).toContain(arg);
    const option = (cmd as Command).options.find((o) => o.long === arg || o.short === arg);
    if (option?.required || option?.optional) {
      const value = rest[++i] as string;
      if (/-addr$/.test(arg)) listens.push(portOf(value));
      if (option.argChoices) expect(option.argChoices, `${c.where}: ${arg} ${value}`).toContain(value);
    }
  }
  for (const [k, v] of Object.entries(c.env)) {
    if (!k.startsWith("CATENA_")) continue;
    expect(env, `${c.where}: environment variable ${k} is read by no code`).toContain(k);
    if (k === "CATENA_FUNCTION_TYPE") expect(RUNNABLE_TYPES, `${c.where}: type ${v}`).toContain(v);
  }
  if (name === "function") {
    const type = positional[0] ?? c.env.CATENA_FUNCTION_TYPE;
    expect(RUNNABLE_TYPES, `${c.where}: function type`).toContain(type);
    for (const k of ["CATENA_FUNCTION", "CATENA_NODE_ID", "CATENA_ADDRESS", "CATENA_XDS_ADDR"])
      expect(Object.keys(c.env), `${c.where} sets ${k}`).toContain(k);
    listens.push(FUNCTION_DEFAULTS.adminPort);
    if (type === "discovery" && !rest.includes("--dns-addr")) listens.push(portOf(UP_DEFAULTS.dnsAddr));
    if (type !== "discovery") listens.push(...CHAIN_PORTS);
  }
  if (name === "control") {
    if (!rest.includes("--api-addr")) listens.push(portOf(DEFAULTS.apiAddr));
    if (!rest.includes("--xds-addr")) listens.push(portOf(DEFAULTS.xdsAddr));
  }
  return listens;
}

/** Ingress ports of the chains the deployments run (their manifests are checked below). */
const CHAIN_PORTS = [8080];

function natsFlagsOk(args: string[], help: string, where: string): void {
  for (const a of args.filter((x) => x.startsWith("-")))
    expect(
      help.includes(` ${a} `) || help.includes(` ${a},`) || help.includes(`${a} <`),
      `${where}: nats-server ${a}`,
    ).toBe(true);
}

async function natsHelp(): Promise<string | undefined> {
  const out = await run("nats-server", ["--help"]).catch((e: { stdout?: string }) => ({
    stdout: e.stdout ?? "",
  }));
  return out.stdout || undefined;
}

// ---------------------------------------------------------------------------------------------------

describe("deploy/kubernetes", () => {
  it("parses, and every image, flag, variable and port exists in the code", async () => {
    const files = (await readdir(join(REPO, "deploy/kubernetes"))).filter((f) => f.endsWith(".yaml")).sort();
    const env = await environmentReads();
    const faasEnv = await faasEnvironment();
    const help = await natsHelp();
    const objects: { file: string; doc: Json }[] = [];
    for (const f of files)
      for (const doc of await yamlDocuments(`deploy/kubernetes/${f}`)) objects.push({ file: f, doc });

    const kustomization = objects.find((o) => o.doc.kind === "Kustomization");
    expect(((kustomization?.doc.resources ?? []) as string[]).sort()).toEqual(
      files.filter((f) => f !== "kustomization.yaml"),
    );

    const services = objects.filter((o) => o.doc.kind === "Service").map((o) => o.doc);
    const serviceNames = new Set(services.map((s) => (s.metadata as Json).name as string));
    const pods: { labels: Json; containers: Json[]; where: string }[] = [];
    const images = new Set<string>();
    for (const { file, doc } of objects) {
      if (!["Deployment", "StatefulSet", "Job"].includes(doc.kind as string)) continue;
      const where = `${file} ${doc.kind}/${(doc.metadata as Json).name}`;
      const template = (doc.spec as Json).template as Json;
      const podSpec = template.spec as Json;
      const labels = ((template.metadata as Json | undefined)?.labels ?? {}) as Json;
      if (doc.kind !== "Job") {
        const match = ((doc.spec as Json).selector as Json).matchLabels as Json;
        for (const [k, v] of Object.entries(match)) expect(labels[k], `${where} selector ${k}`).toBe(v);
      }
      pods.push({ labels, containers: podSpec.containers as Json[], where });
      for (const raw of podSpec.containers as Json[]) {
        images.add(raw.image as string);
        const envList = (raw.env ?? []) as { name: string; value?: string }[];
        const c: Container = {
          where: `${where} ${raw.name}`,
          image: raw.image as string,
          entrypoint: raw.command as string[] | undefined,
          args: (raw.args ?? []) as string[],
          env: Object.fromEntries(envList.map((e) => [e.name, e.value])),
          ports: ((raw.ports ?? []) as { containerPort: number }[]).map((p) => p.containerPort),
        };
        if ((raw.image as string).startsWith("nats:")) {
          if (help) natsFlagsOk(c.args, help, c.where);
          continue;
        }
        const listens = checkCatenaContainer(c, env, faasEnv);
        for (const p of c.ports) expect(listens, `${c.where}: containerPort ${p}`).toContain(p);
        // Where a variable names another component (host:port or URL), that is a Service and its port.
        for (const [k, v] of Object.entries(c.env)) {
          const m = /^(?:(?:nats|http):\/\/)?([a-z0-9-]+):(\d+)$/.exec(v ?? "");
          if (!m || !/ADDR|URL|SERVER/.test(k)) continue;
          expect(serviceNames, `${c.where}: ${k}=${v}`).toContain(m[1]);
          const svc = services.find((s) => (s.metadata as Json).name === m[1]) as Json;
          const ports = ((svc.spec as Json).ports as { port: number }[]).map((p) => p.port);
          expect(ports, `${c.where}: ${k}=${v}`).toContain(Number(m[2]));
        }
        for (const a of c.args) {
          const m = /^http:\/\/([a-z0-9-]+):(\d+)$/.exec(a);
          if (m) expect(serviceNames, `${c.where}: ${a}`).toContain(m[1]);
        }
      }
    }
    expect([...images].sort()).toEqual([CATENA_IMAGE, "nats:2.10-alpine"]);

    // Every Service selects pods, and each target port is a port those pods declare.
    for (const s of services) {
      const where = `Service/${(s.metadata as Json).name}`;
      const selector = (s.spec as Json).selector as Json;
      const selected = pods.filter((p) => Object.entries(selector).every(([k, v]) => p.labels[k] === v));
      expect(selected.length, `${where} selects no pod`).toBeGreaterThan(0);
      for (const port of (s.spec as Json).ports as Json[]) {
        const target = port.targetPort ?? port.port;
        const protocol = port.protocol ?? "TCP";
        for (const pod of selected) {
          const declared = pod.containers.flatMap((c) => (c.ports ?? []) as Json[]);
          const found = declared.some(
            (d) => (d.name === target || d.containerPort === target) && (d.protocol ?? "TCP") === protocol,
          );
          expect(found, `${where} port ${String(target)}/${String(protocol)} on ${pod.where}`).toBe(true);
        }
      }
    }

    // The Catena manifests the cluster applies are valid.
    const manifests = objects.find(
      (o) => o.doc.kind === "ConfigMap" && (o.doc.metadata as Json).name === "catena-manifests",
    );
    for (const [key, text] of Object.entries((manifests?.doc.data ?? {}) as Record<string, string>)) {
      const result = validateManifests(text);
      expect(result.errors, key).toEqual([]);
    }
  });
});

describe("deploy/docker", () => {
  it("the Dockerfile is multi-stage, installs with npm ci, prunes dev dependencies, runs as non-root", async () => {
    const text = await readFile(join(REPO, "deploy/docker/Dockerfile"), "utf8");
    const stages = text.split("\n").filter((l) => /^FROM /.test(l));
    expect(stages.length).toBeGreaterThanOrEqual(2);
    expect(text).toMatch(/npm ci\b/);
    expect(text).toMatch(/npm prune --omit=dev/);
    const final = text.slice(text.lastIndexOf("\nFROM "));
    expect(final).toMatch(/\nUSER (node|\d{3,})\b/);
    expect(final).not.toMatch(/\nUSER root\b/);
    // The entrypoint is the package's own bin.
    const bin = (
      JSON.parse(await readFile(join(REPO, "package.json"), "utf8")) as { bin: Record<string, string> }
    ).bin.catena as string;
    expect(final).toContain(`ENTRYPOINT ["node", "${bin}"]`);
    // Every COPY from the build context names something that exists.
    for (const m of text.matchAll(/^COPY (?!--from)(.+) \S+$/gm))
      for (const src of (m[1] as string).split(/\s+/))
        expect(existsSync(join(REPO, src)), `COPY ${src}`).toBe(true);
    // Ports it exposes are ones the code listens on by default.
    const exposed = [...(/^EXPOSE (.+)$/m.exec(text)?.[1] ?? "").matchAll(/(\d+)/g)].map((x) => Number(x[1]));
    const known = [
      portOf(DEFAULTS.apiAddr),
      portOf(DEFAULTS.xdsAddr),
      FUNCTION_DEFAULTS.adminPort,
      portOf(UP_DEFAULTS.dnsAddr),
      ...CHAIN_PORTS,
    ];
    for (const p of exposed) expect(known, `EXPOSE ${p}`).toContain(p);
  });

  it("compose.yaml parses, and every image, flag, variable and port exists in the code", async () => {
    const [doc] = await yamlDocuments("deploy/docker/compose.yaml");
    const env = await environmentReads();
    const faasEnv = await faasEnvironment();
    const help = await natsHelp();
    const services = (doc as Json).services as Record<string, Json>;
    const images = new Set<string>();
    /** What each service listens on, for the references between them. */
    const listening = new Map<string, number[]>();
    const references: { where: string; key: string; value: string }[] = [];
    for (const [name, s] of Object.entries(services)) {
      const where = `compose ${name}`;
      images.add(s.image as string);
      const args = (s.command ?? []) as string[];
      if ((s.image as string).startsWith("nats:")) {
        if (help) natsFlagsOk(args, help, where);
        const http = args.indexOf("--http_port");
        listening.set(name, [4222, ...(http >= 0 ? [Number(args[http + 1])] : [])]);
        continue;
      }
      // Built from the Dockerfile: the same image as everywhere.
      expect((s.build as Json).dockerfile, where).toBe("deploy/docker/Dockerfile");
      expect(
        existsSync(
          join(REPO, "deploy/docker", (s.build as Json).context as string, "deploy/docker/Dockerfile"),
        ),
      ).toBe(true);
      const envMap = (s.environment ?? {}) as Record<string, string>;
      const ports = ((s.ports ?? []) as string[]).map((p) => Number(/:(\d+)(?:\/\w+)?$/.exec(p)?.[1]));
      const c: Container = {
        where,
        image: s.image as string,
        entrypoint: s.entrypoint as string[] | undefined,
        args,
        env: envMap,
        ports,
      };
      const listens = checkCatenaContainer(c, env, faasEnv);
      listening.set(name, listens);
      for (const p of ports) expect(listens, `${where}: published port ${p}`).toContain(p);
      for (const [key, value] of Object.entries(envMap))
        references.push({ where, key, value: String(value) });
      for (const a of args) references.push({ where, key: "argument", value: a });
      // A function instance binds its own address: the one its container has.
      if (envMap.CATENA_ADDRESS) {
        const fixed = ((s.networks as Json).catena as Json).ipv4_address;
        expect(envMap.CATENA_ADDRESS, where).toBe(fixed);
      }
    }
    // Where a variable or argument names another service (host:port or URL), it listens there.
    for (const { where, key, value } of references) {
      const m = /^(?:(?:nats|http):\/\/)?([a-z][a-z0-9-]*):(\d+)$/.exec(value);
      if (!m) continue;
      expect([...listening.keys()], `${where}: ${key}=${value}`).toContain(m[1]);
      expect(listening.get(m[1] as string), `${where}: ${key}=${value}`).toContain(Number(m[2]));
    }
    expect([...images].sort()).toEqual([CATENA_IMAGE, "nats:2.10-alpine"]);
    // Addresses are unique on the network and inside its subnet.
    const fixed = Object.values(services)
      .map((s) => (s.networks as Json | string[] | undefined as Json | undefined)?.catena as Json | undefined)
      .flatMap((n) => (n?.ipv4_address ? [n.ipv4_address as string] : []));
    expect(new Set(fixed).size).toBe(fixed.length);
    for (const a of fixed) expect(a.startsWith("172.30.0.")).toBe(true);
  });
});
