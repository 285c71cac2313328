// One function instance as a supervised child process: started, restarted with exponential backoff
// when it exits on its own, stopped with SIGTERM (the host drains its listeners and exits) and
// SIGKILL after a grace period. Each line it writes goes to the log sink tagged with its id.
import type { ChildProcess } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { Backoff, type BackoffOptions } from "../../xds/client/backoff.js";
import type { InstanceSpec, Launcher } from "./launcher.js";

export type InstanceState = "running" | "backoff" | "stopping" | "stopped";

/** What the runtime publishes about an instance: `dev.catena.runtime.<verb>`, subject the id. */
export type InstanceEventVerb = "started" | "restarted" | "exited" | "stopped";

export interface LogSink {
  line(instance: string, stream: "stdout" | "stderr", text: string): void;
}

export interface InstanceProcessDeps {
  launcher: Launcher;
  logs: LogSink;
  backoff: BackoffOptions;
  /** Running this long counts as healthy: the next crash restarts after the initial delay again. */
  stableMs: number;
  /** How long SIGTERM gets (the host's drain) before SIGKILL. */
  stopGraceMs: number;
  onEvent(verb: InstanceEventVerb, spec: InstanceSpec, data: Record<string, unknown>): void;
}

export interface InstanceInfo {
  id: string;
  function: string;
  type: string;
  address: string;
  state: InstanceState;
  pid: number | undefined;
  restarts: number;
}

export class InstanceProcess {
  readonly spec: InstanceSpec;
  readonly #deps: InstanceProcessDeps;
  readonly #backoff: Backoff;
  #state: InstanceState = "stopped";
  #child: ChildProcess | undefined;
  #startedAt = 0;
  #restarts = 0;
  #timer: NodeJS.Timeout | undefined;
  #stopped: Promise<void> | undefined;
  readonly #exitWaiters = new Set<() => void>();

  constructor(spec: InstanceSpec, deps: InstanceProcessDeps) {
    this.spec = spec;
    this.#deps = deps;
    this.#backoff = new Backoff(deps.backoff);
  }

  get state(): InstanceState {
    return this.#state;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  info(): InstanceInfo {
    const { id, function: fn, type, address } = this.spec;
    return { id, function: fn, type, address, state: this.#state, pid: this.pid, restarts: this.#restarts };
  }

  start(): void {
    if (this.#state !== "stopped" || this.#stopped) return;
    this.#spawn();
  }

  #spawn(): void {
    this.#timer = undefined;
    this.#state = "running";
    this.#startedAt = Date.now();
    let child: ChildProcess;
    try {
      child = this.#deps.launcher.spawn(this.spec);
    } catch (err) {
      this.#exited(undefined, null, null, err);
      return;
    }
    this.#child = child;
    this.#pipe(child.stdout, "stdout");
    this.#pipe(child.stderr, "stderr");
    let done = false;
    const finish = (code: number | null, signal: NodeJS.Signals | null, err?: unknown) => {
      if (done) return;
      done = true;
      this.#exited(child, code, signal, err);
    };
    // 'close' (not 'exit'): the last log lines are read before the instance counts as gone.
    child.once("close", (code, signal) => finish(code, signal));
    child.once("error", (err) => {
      // A spawn failure gets no 'close'; an error after spawn (a failed kill) is followed by one.
      if (child.pid === undefined) finish(null, null, err);
    });
    const verb = this.#restarts === 0 ? "started" : "restarted";
    this.#deps.onEvent(verb, this.spec, { pid: child.pid, restarts: this.#restarts });
  }

  #pipe(stream: Readable | null, name: "stdout" | "stderr"): void {
    if (!stream) return;
    const lines = createInterface({ input: stream, crlfDelay: Number.POSITIVE_INFINITY });
    lines.on("line", (text) => this.#deps.logs.line(this.spec.id, name, text));
  }

  #exited(
    child: ChildProcess | undefined,
    code: number | null,
    signal: NodeJS.Signals | null,
    err?: unknown,
  ) {
    if (child && this.#child !== child) return;
    this.#child = undefined;
    for (const w of this.#exitWaiters) w();
    this.#exitWaiters.clear();
    const error = err instanceof Error ? err.message : undefined;
    if (this.#state === "stopping" || this.#state === "stopped") {
      this.#state = "stopped";
      this.#deps.onEvent("stopped", this.spec, { code, signal });
      return;
    }
    if (Date.now() - this.#startedAt >= this.#deps.stableMs) this.#backoff.reset();
    const delay = this.#backoff.next();
    this.#restarts++;
    this.#state = "backoff";
    this.#deps.onEvent("exited", this.spec, {
      code,
      signal,
      ...(error ? { error } : {}),
      restartInMs: delay,
      restarts: this.#restarts,
    });
    this.#timer = setTimeout(() => this.#spawn(), delay);
  }

  /** SIGTERM, then SIGKILL after the grace period; resolves once the process is gone. Idempotent. */
  stop(graceMs = this.#deps.stopGraceMs): Promise<void> {
    this.#stopped ??= (async () => {
      if (this.#timer) clearTimeout(this.#timer);
      this.#timer = undefined;
      const child = this.#child;
      this.#state = child ? "stopping" : "stopped";
      if (!child) return;
      const gone = new Promise<void>((resolve) => this.#exitWaiters.add(resolve));
      child.kill("SIGTERM");
      const kill = setTimeout(() => child.kill("SIGKILL"), graceMs);
      await gone;
      clearTimeout(kill);
    })();
    return this.#stopped;
  }

  /** SIGKILL now, no restart (process exit, tests). */
  destroy(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#state = this.#child ? "stopping" : "stopped";
    this.#stopped ??= Promise.resolve();
    this.#child?.kill("SIGKILL");
  }
}
