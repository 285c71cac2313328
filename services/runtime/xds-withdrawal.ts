// Scale-down without refused connections: before an instance gets SIGTERM (and its listeners stop
// accepting), the control server stops routing to it. The instance is marked draining, so the next
// compile leaves it out of the previous hop's endpoints; this resolves once every instance of that
// previous hop has ACKed an endpoints update sent after the mark (or the timeout passed). A first-hop
// instance has no previous hop: DNS and the chain's status stop naming it with the same compile.
import { TYPE_URL } from "../../xds/type-urls.js";
import type { XdsControl } from "../control/xds-server.js";
import type { Withdrawal } from "./function-pool.js";

export interface XdsWithdrawalOptions {
  /** Longest wait for the previous hop to take the instance out (then SIGTERM anyway). */
  timeoutMs: number;
}

type Control = Pick<XdsControl, "compiler" | "instances" | "status">;

export function xdsWithdrawal(xds: Control, options: XdsWithdrawalOptions): Withdrawal {
  return {
    async withdraw(id: string): Promise<void> {
      const upstream = previousHop(xds, id);
      const sentBefore = new Map(upstream.map((n) => [n, endpointsSent(xds, n)]));
      if (!xds.instances.drain(id)) return; // not connected: nobody routes to it
      const deadline = Date.now() + options.timeoutMs;
      await until(deadline, () => !stagesOf(xds, id));
      await until(deadline, () =>
        upstream.every((n) => {
          const t = xds.status.node(n)?.types.get(TYPE_URL.endpoint);
          if (!t || (xds.status.node(n)?.streams ?? 0) === 0) return true; // gone: sends nothing
          return t.sentVersion !== sentBefore.get(n) && t.ackedVersion === t.sentVersion;
        }),
      );
    },
  };
}

/** Whether any chain still places the instance in a stage (the compile has not run yet). */
function stagesOf(xds: Control, id: string): boolean {
  return xds.compiler.chains().some((c) => c.stages.some((s) => s.instances.includes(id)));
}

/** The instances of the stages right before the ones `id` runs: they hold its address. */
function previousHop(xds: Control, id: string): string[] {
  const out = new Set<string>();
  for (const chain of xds.compiler.chains()) {
    chain.stages.forEach((stage, i) => {
      if (i > 0 && stage.instances.includes(id))
        for (const n of chain.stages[i - 1]?.instances ?? []) if (n !== id) out.add(n);
    });
  }
  return [...out];
}

function endpointsSent(xds: Control, node: string): string | undefined {
  return xds.status.node(node)?.types.get(TYPE_URL.endpoint)?.sentVersion;
}

async function until(deadline: number, done: () => boolean): Promise<void> {
  while (!done() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
}
