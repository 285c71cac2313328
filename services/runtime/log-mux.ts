// The instances' logs as one stream, each line tagged with its instance. Instances log pino JSON
// lines (their stdout is a pipe); a JSON line gets an `instance` field and goes out as JSON, or, on a
// terminal, as one readable line. Anything else (a stack trace, the admin banner) is wrapped or prefixed.
import type { LogSink } from "./instance-process.js";

export type LogFormat = "json" | "pretty";

export interface LogMuxOptions {
  format: LogFormat;
  write(line: string): void;
  /** Clock for lines that carry no time of their own (tests). */
  now?: () => number;
}

const LEVELS: Record<number, string> = {
  10: "TRACE",
  20: "DEBUG",
  30: "INFO",
  40: "WARN",
  50: "ERROR",
  60: "FATAL",
};
/** Fields every pino line has; the pretty form shows them in its own way or not at all. */
const FRAME = new Set(["level", "time", "pid", "hostname", "name", "msg", "instance"]);

export class LogMux implements LogSink {
  readonly #o: LogMuxOptions;

  constructor(options: LogMuxOptions) {
    this.#o = options;
  }

  line(instance: string, stream: "stdout" | "stderr", text: string): void {
    if (text.trim() === "") return;
    const record = parseRecord(text);
    if (this.#o.format === "json") {
      const out = record
        ? { ...record, instance }
        : { level: stream === "stderr" ? 40 : 30, time: this.#now(), instance, stream, msg: text };
      this.#o.write(JSON.stringify(out));
      return;
    }
    if (!record) {
      this.#o.write(`${clock(this.#now())} ${"".padEnd(5)} [${instance}] ${text}`);
      return;
    }
    const level = LEVELS[Number(record.level)] ?? String(record.level ?? "");
    const time = typeof record.time === "number" ? record.time : this.#now();
    const rest: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(record)) if (!FRAME.has(k)) rest[k] = v;
    const fields = Object.keys(rest).length > 0 ? ` ${JSON.stringify(rest)}` : "";
    this.#o.write(`${clock(time)} ${level.padEnd(5)} [${instance}] ${String(record.msg ?? "")}${fields}`);
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }
}

function parseRecord(text: string): Record<string, unknown> | undefined {
  if (!text.startsWith("{")) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return v !== null && typeof v === "object" && !Array.isArray(v)
      ? (v as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2) => String(n).padStart(w, "0");
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}
