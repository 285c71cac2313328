// catena status: each xDS node's config versions per type and its ACK/NACK state.
import Table from "cli-table3";
import type { CliContext } from "../context.js";
import { usage } from "../exit.js";

export async function statusCommand(ctx: CliContext, options: { output: string }): Promise<void> {
  const nodes = await ctx.client().xdsNodes();
  if (options.output === "json") {
    ctx.io.out(JSON.stringify({ items: nodes }, null, 2));
    return;
  }
  if (options.output !== "table") throw usage("-o takes table or json");
  if (nodes.length === 0) {
    ctx.io.out("No xDS nodes have connected.");
    return;
  }
  const table = new Table({
    head: ["NODE", "CLUSTER", "CONNECTED", "TYPE", "SENT", "ACKED", "STATE"],
    style: { head: [] },
  });
  for (const n of nodes) {
    for (const t of n.types) {
      const state =
        t.nacked && t.nacked === t.sent ? `NACKED: ${t.error ?? ""}` : t.acked === t.sent ? "ACKED" : "SENT";
      table.push([
        n.id,
        n.cluster,
        n.connected ? "yes" : "no",
        t.typeUrl.slice(t.typeUrl.lastIndexOf(".") + 1),
        t.sent ?? "-",
        t.acked ?? "-",
        state,
      ]);
    }
    if (n.types.length === 0) table.push([n.id, n.cluster, n.connected ? "yes" : "no", "-", "-", "-", "-"]);
  }
  ctx.io.out(table.toString());
}
