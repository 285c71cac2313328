// catena lookup SERVICE: a Service's endpoints as the mesh resolves it (healthy ones by default), and
// with --watch every change after, through the API's blocking query (no polling).
import Table from "cli-table3";
import type { LookupResponse } from "../client.js";
import type { CliContext } from "../context.js";
import { usage } from "../exit.js";
import { BARE } from "../output.js";

export interface LookupFlags {
  watch?: boolean;
  all?: boolean;
  output: string;
  wait: string;
}

export async function lookupCommand(ctx: CliContext, service: string, flags: LookupFlags): Promise<void> {
  if (flags.output !== "table" && flags.output !== "json") throw usage("-o takes table or json");
  const client = ctx.client();
  const healthy = !flags.all;
  const print = (r: LookupResponse) =>
    ctx.io.out(flags.output === "json" ? JSON.stringify(r) : renderLookup(r, flags.all === true));
  let current = await client.lookup(service, { healthy });
  print(current);
  if (!flags.watch) return;
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    while (!abort.signal.aborted) {
      const next = await client.lookup(service, {
        healthy,
        index: current.index,
        wait: flags.wait,
        signal: abort.signal,
      });
      // The wait ran out with nothing new: ask again from the same index.
      if (next.index !== current.index) print(next);
      current = next;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}

export function renderLookup(r: LookupResponse, showHealth: boolean): string {
  if (r.endpoints.length === 0)
    return `${r.service}: no ${showHealth ? "" : "healthy "}endpoints (index ${r.index})`;
  const head = ["ADDRESS", "PORT", "WEIGHT", "PORT NAME", "SOURCE", ...(showHealth ? ["HEALTHY"] : [])];
  const table = new Table({
    head,
    chars: BARE,
    style: { head: [], border: [], "padding-left": 0, "padding-right": 3 },
  });
  for (const e of r.endpoints)
    table.push([
      e.address,
      String(e.port),
      String(e.weight),
      e.portName ?? "",
      e.source === "registered" && e.id
        ? `registered ${e.id}`
        : e.owner
          ? `${e.source} ${e.owner}`
          : e.source,
      ...(showHealth ? [e.healthy ? "yes" : "no"] : []),
    ]);
  return table.toString();
}
