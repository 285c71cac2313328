// What the data-path benches share: child processes (a path's parts, killed together at the end),
// an echo server, waiting for a path to echo, and 64-byte ping-pong latency through it.
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { connect, type Socket } from "node:net";

/** A TCP echo server as a one-line Node program: `node -e ECHO_SERVER <host> <port>`. */
export const ECHO_SERVER = `const net=require("net");net.createServer({noDelay:true},s=>{s.on("error",()=>s.destroy());s.pipe(s)}).listen(+process.argv[2],process.argv[1]);`;

/** The processes of a bench run; an unexpected exit is reported with the tail of its stderr. */
export class Children {
  readonly #all: ChildProcess[] = [];
  #stopping = false;

  constructor(readonly cwd: string) {}

  run(cmd: string, args: string[], env: Record<string, string> = {}): ChildProcess {
    const c = spawn(cmd, args, {
      cwd: this.cwd,
      env: { ...process.env, ...env },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let err = "";
    c.stderr?.on("data", (d: Buffer) => {
      err = (err + d.toString()).slice(-2000);
    });
    c.on("exit", (code) => {
      if (code && code !== 0 && !this.#stopping) console.error(`${cmd} exited ${code}: ${err}`);
    });
    this.#all.push(c);
    return c;
  }

  killAll(): void {
    this.#stopping = true;
    for (const c of this.#all) c.kill("SIGKILL");
  }
}

export function dial(host: string, port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host, port, noDelay: true });
    s.once("connect", () => resolve(s));
    s.once("error", reject);
  });
}

/** Up once a byte sent through host:port comes back (the echo server at the far end answered). */
export async function waitForEcho(host: string, port: number, ms = 30_000, echoMs = 500): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      const s = await dial(host, port);
      s.write("x");
      await Promise.race([
        once(s, "data"),
        new Promise((_, rej) => setTimeout(() => rej(new Error("no echo")), echoMs)),
      ]);
      s.destroy();
      return;
    } catch {
      if (Date.now() > deadline) throw new Error(`${host}:${port} did not come up`);
      await new Promise((r) => setTimeout(r, 200));
    }
  }
}

export function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? Number.NaN;
}

/** 64-byte round trips, one at a time per connection, for `seconds`: p50/p99 in µs and round trips/s. */
export async function pingPong(
  host: string,
  port: number,
  conns: number,
  seconds: number,
): Promise<{ p50: number; p99: number; rps: number }> {
  const msg = Buffer.alloc(64, 7);
  const samples: number[] = [];
  const end = performance.now() + seconds * 1000;
  await Promise.all(
    Array.from({ length: conns }, async () => {
      const s = await dial(host, port);
      let got = 0;
      let resolve: () => void = () => {};
      s.on("data", (c: Buffer) => {
        got += c.length;
        if (got >= 64) {
          got -= 64;
          resolve();
        }
      });
      while (performance.now() < end) {
        const t0 = performance.now();
        const done = new Promise<void>((r) => (resolve = r));
        s.write(msg);
        await done;
        samples.push(performance.now() - t0);
      }
      s.destroy();
    }),
  );
  samples.sort((a, b) => a - b);
  return {
    p50: percentile(samples, 50) * 1000,
    p99: percentile(samples, 99) * 1000,
    rps: samples.length / seconds,
  };
}
