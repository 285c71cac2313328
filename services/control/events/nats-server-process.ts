// Starting and probing a local nats-server process: the embedded default of `catena up`, and the
// test helper's private servers. Plain sockets and child processes; no NATS client here.
import { type ChildProcess, spawn } from "node:child_process";
import { accessSync, constants } from "node:fs";
import { mkdir } from "node:fs/promises";
import { createServer, connect as tcpConnect } from "node:net";
import { delimiter, join } from "node:path";
import { CatenaError, ErrorCode } from "../errors.js";

export interface NatsServerProcessOptions {
  /** Path of the nats-server binary. */
  binary: string;
  host: string;
  /** 0 picks a free port. */
  port: number;
  jetstream: boolean;
  /** JetStream store directory (created when missing); required with `jetstream`. */
  storeDir?: string;
  readyTimeoutMs: number;
  /** Extra command-line arguments. */
  args?: string[];
}

export interface NatsServerProcess {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Resolves with the exit code (or signal) once the process has ended. */
  readonly exited: Promise<number | string>;
  /** SIGTERM (a clean JetStream shutdown), SIGKILL after `graceMs`. Idempotent. */
  stop(signal?: NodeJS.Signals, graceMs?: number): Promise<void>;
}

/** The first executable `name` in `searchPath` (a PATH-style list), or undefined. */
export function findExecutable(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(delimiter)) {
    if (dir === "") continue;
    const candidate = join(dir, name);
    try {
      accessSync(candidate, constants.X_OK);
      return candidate;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** A port that was free a moment ago on `host`. */
export function freePort(host = "127.0.0.1"): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once("error", reject);
    server.listen(0, host, () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** `{host, port}` of each server in a `nats://a:4222,nats://b:4222` list (credentials ignored). */
export function natsHostPorts(urls: string): { host: string; port: number }[] {
  return urls
    .split(",")
    .map((u) => u.trim())
    .filter((u) => u !== "")
    .map((u) => {
      const url = new URL(u.includes("://") ? u : `nats://${u}`);
      const host = url.hostname.replace(/^\[(.*)\]$/, "$1");
      return { host, port: url.port === "" ? 4222 : Number(url.port) };
    });
}

/** True when something at `url` speaks NATS (sends its INFO line) within `timeoutMs`. */
export async function probeNats(url: string, timeoutMs = 500): Promise<boolean> {
  let targets: { host: string; port: number }[];
  try {
    targets = natsHostPorts(url);
  } catch {
    return false;
  }
  const answers = await Promise.all(targets.map((t) => probeOne(t.host, t.port, timeoutMs)));
  return answers.includes(true);
}

function probeOne(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect({ host, port });
    let received = "";
    const finish = (ok: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => finish(false), timeoutMs);
    socket.on("data", (chunk: Buffer) => {
      received += chunk.toString("latin1");
      if (received.length >= 5) finish(received.startsWith("INFO "));
    });
    socket.on("error", () => finish(false));
    socket.on("close", () => finish(false));
  });
}

export async function startNatsServerProcess(options: NatsServerProcessOptions): Promise<NatsServerProcess> {
  if (options.jetstream && options.storeDir === undefined) {
    throw new CatenaError(ErrorCode.Invalid, "a JetStream nats-server needs a store directory", [
      { path: "storeDir", message: "required with jetstream" },
    ]);
  }
  if (options.storeDir !== undefined) await mkdir(options.storeDir, { recursive: true, mode: 0o700 });
  // A port picked as free can be taken before nats-server binds it: try a few.
  const attempts = options.port === 0 ? 3 : 1;
  let lastError: unknown;
  for (let i = 0; i < attempts; i++) {
    const port = options.port === 0 ? await freePort(options.host) : options.port;
    try {
      return await launch(options, port);
    } catch (err) {
      lastError = err;
    }
  }
  throw lastError;
}

async function launch(options: NatsServerProcessOptions, port: number): Promise<NatsServerProcess> {
  const args = ["-a", options.host, "-p", String(port)];
  if (options.jetstream) args.push("-js", "-sd", options.storeDir as string);
  args.push(...(options.args ?? []));
  const child = spawn(options.binary, args, { stdio: ["ignore", "pipe", "pipe"] });
  // Keep the last lines of output for error messages; never let a full pipe stall the server.
  const tail: string[] = [];
  const keep = (chunk: Buffer) => {
    tail.push(...chunk.toString("utf8").split("\n").filter(Boolean));
    if (tail.length > 20) tail.splice(0, tail.length - 20);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => resolve(code ?? signal ?? "unknown"));
    child.once("error", (err) => {
      tail.push(String(err));
      resolve("spawn error");
    });
  });
  let gone = false;
  void exited.then(() => {
    gone = true;
  });

  const host = options.host.includes(":") ? `[${options.host}]` : options.host;
  const url = `nats://${host}:${port}`;
  const deadline = Date.now() + options.readyTimeoutMs;
  while (!gone && Date.now() < deadline) {
    if (await probeNats(url, 250)) {
      return processHandle(child, url, port, exited);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill("SIGKILL");
  await exited;
  throw new CatenaError(
    ErrorCode.Unavailable,
    `nats-server did not start on ${url}: ${tail.slice(-5).join(" | ") || "no output"}`,
  );
}

function processHandle(
  child: ChildProcess,
  url: string,
  port: number,
  exited: Promise<number | string>,
): NatsServerProcess {
  let stopping: Promise<void> | undefined;
  return {
    url,
    port,
    pid: child.pid ?? -1,
    exited,
    stop(signal: NodeJS.Signals = "SIGTERM", graceMs = 5_000) {
      stopping ??= (async () => {
        if (child.exitCode !== null || child.signalCode !== null) return;
        child.kill(signal);
        const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
        await exited;
        clearTimeout(timer);
      })();
      return stopping;
    },
  };
}
