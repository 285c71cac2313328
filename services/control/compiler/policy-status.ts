// What each NetworkPolicy compiled to, for operators: the Services it shapes, the chains whose
// firewall enforces it, and those it selects but cannot enforce (no firewall hop in front). Written
// to the policy's status (`Compiled` condition, `services`, `enforcedBy`, `unenforced`) and emitted
// as `networkpolicy.<name>.compiled` whenever that changes. It compiles with the same function the
// chain compiler uses (policy.ts), over its own view of the store.
import type { Logger } from "pino";
import type { EventSink } from "../events/types.js";
import { workloadAddress } from "../ipam/workload-address.js";
import type { StoredResource } from "../model/resource.js";
import type {
  NetworkPolicySpec,
  ServiceChainSpec,
  ServiceFunctionSpec,
  ServiceSpec,
} from "../model/schemas.js";
import { setCondition } from "../status/conditions.js";
import type { StatusWriter } from "../status/status-writer.js";
import type { Store } from "../store/store.js";
import { ModelState } from "./model-state.js";
import { compileServicePolicy, type PolicyModel, policyTypes, selectsService } from "./policy.js";

export interface PolicyReport {
  services: string[];
  enforcedBy: string[];
  unenforced: string[];
  rules: number;
}

/** Per policy: which Services it shapes and through which chains' firewalls. */
export function policyReports(model: PolicyModel): Map<string, PolicyReport> {
  const reports = new Map<string, PolicyReport>();
  const policies = [...model.list("NetworkPolicy")];
  for (const p of policies) {
    const spec = p.spec as NetworkPolicySpec;
    const rules = (spec.ingress?.length ?? 0) + (spec.egress?.length ?? 0) + (spec.deny?.length ?? 0);
    reports.set(p.metadata.name, { services: [], enforcedBy: [], unenforced: [], rules });
  }
  const chains = new Map<string, StoredResource>();
  for (const c of model.list("ServiceChain")) chains.set((c.spec as ServiceChainSpec).service, c);
  for (const service of model.list("Service")) {
    const name = service.metadata.name;
    const chain = chains.get(name);
    const sspec = service.spec as ServiceSpec;
    const firewall = chain
      ? (chain.spec as ServiceChainSpec).hops.some(
          (h) =>
            (model.get("ServiceFunction", h.function)?.spec as ServiceFunctionSpec | undefined)?.type ===
            "firewall",
        )
      : false;
    const destinations = [
      ...(sspec.endpoints ?? []).map((e) => e.address),
      ...[...model.list("Workload")].flatMap((w) => workloadAddress(w, sspec.network) ?? []),
    ];
    const port = chain ? (chain.spec as ServiceChainSpec).ingress.port : (sspec.ports[0]?.port ?? 0);
    const compiled = compileServicePolicy(service, port, destinations, model);
    for (const p of policies) {
      const report = reports.get(p.metadata.name) as PolicyReport;
      const pspec = p.spec as NetworkPolicySpec;
      const concerned =
        compiled?.sources.includes(p.metadata.name) ||
        (policyTypes(pspec).includes("Ingress") && selectsService(pspec.subject.selector, service, model));
      if (!concerned) continue;
      report.services.push(name);
      if (firewall && chain) report.enforcedBy.push(chain.metadata.name);
      else report.unenforced.push(name);
    }
  }
  return reports;
}

export interface PolicyStatusOptions {
  store: Store;
  status: StatusWriter;
  events: EventSink;
  logger: Logger;
  /** Coalesces a burst of changes into one pass. */
  debounceMs?: number;
}

export function startPolicyStatus(options: PolicyStatusOptions): { close(): Promise<void> } {
  const { store, status, events, logger } = options;
  const model = new ModelState();
  const last = new Map<string, string>();
  const watch = store.watch({
    kinds: ["NetworkPolicy", "Service", "ServiceChain", "ServiceFunction", "Workload", "Network"],
    initial: true,
  });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const pass = async () => {
    for (const [name, report] of policyReports(model)) {
      const fingerprint = JSON.stringify(report);
      if (last.get(name) === fingerprint) continue;
      last.set(name, fingerprint);
      const condition =
        report.unenforced.length === 0
          ? {
              type: "Compiled",
              status: "True" as const,
              reason: "Compiled",
              message: `enforced by ${report.enforcedBy.length} chain firewall(s)`,
            }
          : {
              type: "Compiled",
              status: "False" as const,
              reason: "NoFirewall",
              message: `no firewall hop in front of ${report.unenforced.join(", ")}`,
            };
      await status.update("NetworkPolicy", name, (current) => ({
        ...current.status,
        services: report.services,
        enforcedBy: report.enforcedBy,
        unenforced: report.unenforced,
        conditions: setCondition(current.status?.conditions ?? [], condition, new Date()),
      }));
      events.emit({ kind: "networkpolicy", name, verb: "compiled", data: report });
    }
    for (const name of [...last.keys()]) if (!model.get("NetworkPolicy", name)) last.delete(name);
  };
  const schedule = () => {
    if (timer) return;
    timer = setTimeout(() => {
      timer = undefined;
      running = running.then(pass).catch((err: unknown) => logger.warn({ err }, "policy status pass failed"));
    }, options.debounceMs ?? 50);
  };
  const done = (async () => {
    try {
      for await (const change of watch) {
        // Our own status writes on policies change nothing we compile from.
        if (change.type === "status" && change.object.kind === "NetworkPolicy") continue;
        model.apply(change);
        schedule();
      }
    } catch (err) {
      logger.warn({ err }, "policy status: store watch ended");
    }
  })();
  return {
    async close() {
      watch.close();
      if (timer) clearTimeout(timer);
      await done;
      await running;
    },
  };
}
