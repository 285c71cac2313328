// catena events: the recent tail, or a live feed with --follow (SSE from the control server).
import type { CloudEvent } from "../../control/events/types.js";
import type { CliContext } from "../context.js";
import { usage } from "../exit.js";

export async function eventsCommand(
  ctx: CliContext,
  options: { follow?: boolean; type?: string; output: string; limit: string },
): Promise<void> {
  if (options.output !== "table" && options.output !== "json") throw usage(`-o takes table or json`);
  const print = (e: CloudEvent) =>
    ctx.io.out(
      options.output === "json" ? JSON.stringify(e) : `${e.time}  ${e.type.padEnd(36)} ${e.subject}`,
    );
  const filter = options.type ? { type: options.type } : {};
  if (!options.follow) {
    for (const e of await ctx.client().recentEvents(filter, Number(options.limit) || 100)) print(e);
    return;
  }
  const abort = new AbortController();
  const stop = () => abort.abort();
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
  try {
    for await (const e of ctx.client().followEvents(filter, abort.signal)) print(e);
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    process.off("SIGINT", stop);
    process.off("SIGTERM", stop);
  }
}
