import { describe, expect, it } from "vitest";
import { LogMux } from "./log-mux.js";

const pinoLine = JSON.stringify({
  level: 30,
  time: Date.UTC(2026, 0, 2, 3, 4, 5, 6),
  pid: 42,
  hostname: "h",
  name: "catena-function-qos",
  kind: "Listener",
  msg: "config applied",
});

function mux(format: "json" | "pretty") {
  const out: string[] = [];
  const m = new LogMux({ format, write: (l) => out.push(l), now: () => 0 });
  return { m, out };
}

describe("LogMux", () => {
  it("json: a pino line keeps its fields and gains the instance", () => {
    const { m, out } = mux("json");
    m.line("edge-qos-0", "stdout", pinoLine);
    expect(JSON.parse(out[0] as string)).toMatchObject({
      instance: "edge-qos-0",
      msg: "config applied",
      kind: "Listener",
      pid: 42,
    });
  });

  it("json: any other line is wrapped, stderr as a warning", () => {
    const { m, out } = mux("json");
    m.line("edge-fw-0", "stderr", "catena function firewall edge-fw-0: admin http://127.64.0.2:9901");
    expect(JSON.parse(out[0] as string)).toEqual({
      level: 40,
      time: 0,
      instance: "edge-fw-0",
      stream: "stderr",
      msg: "catena function firewall edge-fw-0: admin http://127.64.0.2:9901",
    });
  });

  it("pretty: one readable line tagged with the instance, extra fields as JSON", () => {
    const { m, out } = mux("pretty");
    m.line("edge-qos-0", "stdout", pinoLine);
    expect(out[0]).toMatch(
      /^\d\d:\d\d:\d\d\.\d{3} INFO {2}\[edge-qos-0\] config applied \{"kind":"Listener"\}$/,
    );
    m.line("edge-qos-0", "stderr", "    at frame (file.js:1:1)");
    expect(out[1]).toMatch(/\[edge-qos-0\] {5}at frame/);
  });

  it("drops blank lines", () => {
    const { m, out } = mux("json");
    m.line("x-0", "stdout", "   ");
    expect(out).toEqual([]);
  });
});
