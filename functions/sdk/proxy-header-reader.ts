// Reads the PROXY v2 header off a freshly accepted socket: feeds the parser chunk by chunk, then
// pauses the socket and puts the bytes after the header back, so whoever reads next (a Pump) sees
// the payload from its first byte. Resolves with the parser's result; never rejects.
import type { Socket } from "node:net";
import { PROXY_PARSE_ERROR, ProxyHeaderParser, type ProxyParseResult } from "./proxy-protocol.js";

export interface ReadProxyHeaderOptions {
  /** A peer that does not complete its header in time is refused; default 5 s. */
  timeoutMs?: number;
  maxHeaderLength?: number;
}

export function readProxyHeader(
  socket: Socket,
  options: ReadProxyHeaderOptions = {},
): Promise<ProxyParseResult> {
  return new Promise((resolve) => {
    const parser = new ProxyHeaderParser({ maxHeaderLength: options.maxHeaderLength });
    let settled = false;
    const finish = (r: ProxyParseResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("close", onEnd);
      socket.off("error", onEnd);
      resolve(r);
    };
    const onData = (chunk: Buffer) => {
      const r = parser.feed(chunk);
      if (r.state === "need-more") return;
      socket.pause();
      if (r.state === "done" && r.rest.length > 0) socket.unshift(r.rest);
      finish(r);
    };
    const onEnd = () => finish(parser.end());
    const timer = setTimeout(
      () => finish({ state: "error", reason: PROXY_PARSE_ERROR.timeout, message: "no PROXY header in time" }),
      options.timeoutMs ?? 5000,
    );
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("close", onEnd);
    socket.once("error", onEnd);
  });
}
