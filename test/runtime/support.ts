// Test support for the local runtime: the real `catena` command, free ports and loopback ranges no
// other test uses, the process tree from /proc, and TCP clients that notice a dropped connection.
import { randomInt } from "node:crypto";
import { once } from "node:events";
import { readdirSync, readFileSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { fileURLToPath } from "node:url";

export { freePort } from "../../services/control/events/nats-server-process.js";

const SOURCE_MAIN = fileURLToPath(new URL("../../services/cli/main.ts", import.meta.url));
const BUILT_MAIN = fileURLToPath(new URL("../../dist/services/cli/main.js", import.meta.url));

/** argv of the `catena` program: the built bin under `npm test`, else the sources through tsx. */
export function catenaCommand(): string[] {
  return process.env.CATENA_TEST_BUILT
    ? [process.execPath, BUILT_MAIN]
    : [process.execPath, "--import", "tsx", SOURCE_MAIN];
}

/** A /24 in 127.180.0.0–127.239.255.0: away from the 127.64.0.0/16 other tests bind in. */
export function uniqueCidr(): string {
  return `127.${randomInt(180, 240)}.${randomInt(0, 256)}.0/24`;
}

/** Resolves when `check` returns a value other than undefined/false; rejects after timeoutMs. */
export async function waitFor<T>(
  what: string,
  check: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 50,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

interface ProcStat {
  pid: number;
  ppid: number;
  state: string;
}

function procStat(pid: number): ProcStat | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, "utf8");
    // The command name (field 2) may hold spaces and parentheses: parse after its last ')'.
    const rest = text.slice(text.lastIndexOf(")") + 2).split(" ");
    return { pid, state: rest[0] ?? "", ppid: Number(rest[1]) };
  } catch {
    return undefined;
  }
}

/** Every process below `root` now (children, their children...), from /proc. */
export function descendants(root: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const st = procStat(Number(entry));
    if (!st) continue;
    const list = children.get(st.ppid) ?? [];
    list.push(st.pid);
    children.set(st.ppid, list);
  }
  const out: number[] = [];
  const queue = [root];
  while (queue.length > 0) {
    const pid = queue.shift() as number;
    for (const c of children.get(pid) ?? []) {
      out.push(c);
      queue.push(c);
    }
  }
  return out;
}

/** Whether a process exists and is not a zombie. */
export function alive(pid: number): boolean {
  const st = procStat(pid);
  return st !== undefined && st.state !== "Z" && st.state !== "X";
}

/** Processes whose command line contains `needle` (our unique CIDR or data dir). */
export function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, "utf8").replaceAll("\0", " ");
      if (cmdline.includes(needle) && alive(Number(entry))) out.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return out;
}

/** One HTTP/1.1 GET over a fresh connection; resolves with the whole response text. */
export function httpGet(address: string, port: number, timeoutMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = netConnect({ host: address, port });
    const chunks: Buffer[] = [];
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`GET ${address}:${port} timed out`));
    }, timeoutMs);
    s.once("connect", () => s.write(`GET / HTTP/1.1\r\nhost: ${address}\r\n\r\n`));
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    s.once("close", () => {
      clearTimeout(timer);
      const text = Buffer.concat(chunks).toString();
      if (text.startsWith("HTTP/1.1 200")) resolve(text);
      else reject(new Error(`GET ${address}:${port}: ${JSON.stringify(text.slice(0, 80))}`));
    });
  });
}

/**
 * A long-lived connection that sends a numbered line every `intervalMs` and checks each comes back
 * (the demo backends echo). `dropped` says whether it ended before `finish()` was called.
 */
export class EchoConnection {
  readonly socket: Socket;
  sent = 0;
  received = 0;
  dropped: string | undefined;
  #buffer = "";
  #timer: NodeJS.Timeout | undefined;
  #finishing = false;
  readonly closed: Promise<void>;

  private constructor(socket: Socket, intervalMs: number) {
    this.socket = socket;
    socket.setEncoding("utf8");
    socket.on("data", (text: string) => {
      this.#buffer += text;
      let nl = this.#buffer.indexOf("\n");
      while (nl >= 0) {
        const line = this.#buffer.slice(0, nl);
        this.#buffer = this.#buffer.slice(nl + 1);
        if (line !== `line ${this.received}`) this.dropped ??= `out of order: got "${line}"`;
        this.received++;
        nl = this.#buffer.indexOf("\n");
      }
    });
    socket.on("error", (err) => {
      this.dropped ??= `error: ${err.message}`;
    });
    this.closed = new Promise((resolve) =>
      socket.once("close", () => {
        if (!this.#finishing) this.dropped ??= `closed by the peer after ${this.received} lines`;
        clearInterval(this.#timer);
        resolve();
      }),
    );
    this.#timer = setInterval(() => {
      if (!socket.writable) return;
      socket.write(`line ${this.sent}\n`);
      this.sent++;
    }, intervalMs);
  }

  static async open(address: string, port: number, intervalMs = 50): Promise<EchoConnection> {
    const s = netConnect({ host: address, port, allowHalfOpen: true });
    await once(s, "connect");
    return new EchoConnection(s, intervalMs);
  }

  /** Stops sending, waits for the outstanding echoes, then half-closes and waits for the close. */
  async finish(timeoutMs = 5000): Promise<void> {
    clearInterval(this.#timer);
    await waitFor("echoes", () => this.received >= this.sent || this.dropped !== undefined, timeoutMs, 10);
    this.#finishing = true;
    this.socket.end();
    await Promise.race([this.closed, new Promise((r) => setTimeout(r, timeoutMs))]);
    this.socket.destroy();
  }
}
