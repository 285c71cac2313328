// The handlers of catena-cni, in both roles. Each is safe to run again: ADD of a known attachment
// returns the address it already has (the IPAM API is idempotent per container and interface) and
// re-applies the same Workload; DEL of something already gone succeeds; DEL while the control server
// is unreachable cleans up locally and leaves a pending delete for a later invocation to replay.

import {
  labelsFromArgs,
  type PluginConfig,
  parseCniArgs,
  parsePluginConfig,
  workloadName,
} from "./config.js";
import { type Assignment, ControlClient } from "./control-client.js";
import type { PluginEnvironment } from "./environment.js";
import { isPluginError, PluginError, PluginErrorCode } from "./errors.js";
import { type InterfaceState, interfaceState } from "./netns.js";
import { type PendingDelete, PendingDeletes } from "./pending-deletes.js";
import type { CmdArgs, PluginFuncs } from "./skel.js";
import type { CniResult } from "./version.js";

export const ANNOTATION = {
  containerId: "cni.catena.dev/container-id",
  ifname: "cni.catena.dev/ifname",
  netns: "cni.catena.dev/netns",
  node: "cni.catena.dev/node",
  cniNetwork: "cni.catena.dev/network",
} as const;

/** Replayed per invocation at most: a long backlog must not hold up the runtime. */
const REPLAY_LIMIT = 32;

export interface PluginDeps {
  env: PluginEnvironment;
  /** The interface as it is in the container (CHECK); iproute2 through nsenter by default. */
  inspect?: (netns: string, ifname: string) => Promise<InterfaceState>;
}

interface Invocation {
  args: CmdArgs;
  config: PluginConfig;
  cniArgs: Map<string, string>;
  workload: string;
  client: ControlClient;
}

export function catenaCniPlugin(deps: PluginDeps): PluginFuncs {
  const { env } = deps;
  const inspect = deps.inspect ?? interfaceState;
  const pending = new PendingDeletes(env.stateDir);

  const invocation = (args: CmdArgs): Invocation => {
    const config = parsePluginConfig(args.config);
    const cniArgs = parseCniArgs(args.args);
    return {
      args,
      config,
      cniArgs,
      workload: workloadName(args.containerId, cniArgs),
      client: new ControlClient(config.server, env.timeoutMs),
    };
  };

  const pendingKey = (inv: Invocation) => ({
    role: inv.config.role,
    server: inv.config.server,
    network: inv.config.network,
    containerId: inv.args.containerId,
    ifname: inv.args.ifname,
  });

  /** Deletes the Workload only while it is still this container's (a pod recreated under the same name is not). */
  const deleteOwnWorkload = async (client: ControlClient, name: string, containerId: string) => {
    const found = await client.getWorkload(name);
    if (!found || found.metadata.annotations?.[ANNOTATION.containerId] !== containerId) return;
    await client.deleteWorkload(name);
  };

  const replay = async (): Promise<void> => {
    const unreachable = new Set<string>();
    for (const p of (await pending.list()).slice(0, REPLAY_LIMIT)) {
      if (unreachable.has(p.server)) continue;
      const client = new ControlClient(p.server, env.timeoutMs);
      try {
        if (p.role === "ipam") await client.release(p.network, p.containerId, p.ifname);
        else if (p.workload) await deleteOwnWorkload(client, p.workload, p.containerId);
        await pending.remove(p);
      } catch (err) {
        if (isPluginError(err) && err.code === PluginErrorCode.TryAgainLater) unreachable.add(p.server);
        else await pending.remove(p); // the server refused it for good: nothing left to retry
      }
    }
  };

  const bestEffortReplay = () => replay().catch(() => undefined);

  return {
    async add(args) {
      const inv = invocation(args);
      // Re-added: whatever an earlier DEL left pending for this attachment is no longer wanted.
      await pending.remove(pendingKey(inv));
      await bestEffortReplay();
      if (inv.config.role === "ipam") {
        const a = await inv.client.allocate(inv.config.network, args.containerId, args.ifname, {
          workload: inv.workload,
          node: env.node,
        });
        return ipamResult(a, inv.config);
      }
      const prev = requirePrevResult(inv.config, "ADD");
      const address = containerAddress(prev, args.ifname);
      const labels = {
        ...inv.config.labels,
        ...labelsFromArgs(inv.cniArgs),
        ...runtimeLabels(inv.config.runtimeConfig),
      };
      await inv.client.applyWorkload({
        apiVersion: "catena.dev/v1alpha1",
        kind: "Workload",
        metadata: {
          name: inv.workload,
          ...(Object.keys(labels).length > 0 && { labels }),
          annotations: {
            [ANNOTATION.containerId]: args.containerId,
            [ANNOTATION.ifname]: args.ifname,
            [ANNOTATION.netns]: args.netns,
            [ANNOTATION.node]: env.node,
            [ANNOTATION.cniNetwork]: inv.config.cniNetwork,
          },
        },
        spec: { kind: "container", networks: [{ name: inv.config.network, address: address.split("/")[0] }] },
      });
      // A chained plugin with nothing of its own to add passes the previous result on.
      return prev;
    },

    async del(args) {
      const inv = invocation(args);
      try {
        if (inv.config.role === "ipam")
          await inv.client.release(inv.config.network, args.containerId, args.ifname);
        else await deleteOwnWorkload(inv.client, inv.workload, args.containerId);
        await bestEffortReplay();
      } catch (err) {
        if (!isPluginError(err) || err.code !== PluginErrorCode.TryAgainLater) throw err;
        const entry: PendingDelete = {
          ...pendingKey(inv),
          ...(inv.config.role === "chained" && { workload: inv.workload }),
          at: new Date().toISOString(),
        };
        await pending.add(entry);
      }
    },

    async check(args) {
      const inv = invocation(args);
      if (inv.config.role === "ipam") {
        const a = await inv.client.lookup(inv.config.network, args.containerId, args.ifname);
        if (!a) {
          throw new PluginError(
            PluginErrorCode.CheckFailed,
            `no address allocated for ${args.containerId}/${args.ifname} in network ${inv.config.network}`,
          );
        }
        const listed = (inv.config.prevResult?.ips ?? []).map((ip) => ip.address.split("/")[0]);
        if (listed.length > 0 && !listed.includes(a.address)) {
          throw new PluginError(
            PluginErrorCode.CheckFailed,
            `allocated ${a.address}, but the previous result lists ${listed.join(", ")}`,
          );
        }
        return;
      }
      const prev = requirePrevResult(inv.config, "CHECK");
      const address = containerAddress(prev, args.ifname);
      const ip = address.split("/")[0];
      const w = await inv.client.getWorkload(inv.workload);
      if (!w || w.metadata.annotations?.[ANNOTATION.containerId] !== args.containerId) {
        throw new PluginError(
          PluginErrorCode.CheckFailed,
          `Workload ${inv.workload} is not registered for this container`,
        );
      }
      const member = w.spec.networks?.find((n) => n.name === inv.config.network);
      if (member?.address !== ip) {
        throw new PluginError(
          PluginErrorCode.CheckFailed,
          `Workload ${inv.workload} has ${member?.address ?? "no address"} in network ${inv.config.network}, expected ${ip}`,
        );
      }
      const state = await inspect(args.netns, args.ifname);
      if (!state.exists)
        throw new PluginError(
          PluginErrorCode.CheckFailed,
          `interface ${args.ifname} is missing in ${args.netns}`,
        );
      if (!state.up) throw new PluginError(PluginErrorCode.CheckFailed, `interface ${args.ifname} is down`);
      if (!state.addresses.includes(address)) {
        throw new PluginError(
          PluginErrorCode.CheckFailed,
          `interface ${args.ifname} has [${state.addresses.join(", ")}], expected ${address}`,
        );
      }
    },

    async status(args) {
      const inv = invocation(args);
      let usage: { free: string } | undefined;
      try {
        usage = await inv.client.network(inv.config.network);
      } catch (err) {
        if (!isPluginError(err) || err.code !== PluginErrorCode.TryAgainLater) throw err;
        throw new PluginError(PluginErrorCode.NotAvailable, err.message, err.details, { cause: err });
      }
      if (!usage)
        throw new PluginError(PluginErrorCode.NotAvailable, `Network ${inv.config.network} does not exist`);
      if (inv.config.role === "ipam" && usage.free === "0") {
        throw new PluginError(
          PluginErrorCode.NotAvailable,
          `Network ${inv.config.network} has no free address`,
        );
      }
      await bestEffortReplay();
    },

    async gc(args) {
      const inv = invocation(args);
      await replay();
      if (inv.config.role === "ipam") {
        await inv.client.gc(inv.config.network, env.node, inv.config.validAttachments);
        return;
      }
      const valid = new Set(inv.config.validAttachments.map((v) => `${v.containerId}/${v.ifname}`));
      for (const w of await inv.client.listWorkloads()) {
        const a = w.metadata.annotations ?? {};
        if (a[ANNOTATION.node] !== env.node || a[ANNOTATION.cniNetwork] !== inv.config.cniNetwork) continue;
        if (valid.has(`${a[ANNOTATION.containerId]}/${a[ANNOTATION.ifname]}`)) continue;
        await inv.client.deleteWorkload(w.metadata.name);
      }
    },
  };
}

function ipamResult(a: Assignment, config: PluginConfig): CniResult {
  return {
    ips: [{ address: `${a.address}/${a.prefixLength}`, gateway: a.gateway }],
    routes: config.routes,
    dns: {},
  };
}

function requirePrevResult(config: PluginConfig, command: string): CniResult {
  if (!config.prevResult) {
    throw new PluginError(
      PluginErrorCode.InvalidConfig,
      `${command} as a chained plugin needs prevResult`,
      "list catena-cni after a plugin that creates the interface (bridge), or use it as that plugin's ipam",
    );
  }
  return config.prevResult;
}

/** The container interface's address (CIDR form) in the previous result. */
export function containerAddress(prev: CniResult, ifname: string): string {
  const interfaces = prev.interfaces ?? [];
  const index = interfaces.findIndex((i) => i.name === ifname && i.sandbox);
  const ips = (prev.ips ?? []).filter(
    (ip) => index < 0 || ip.interface === undefined || ip.interface === index,
  );
  const first = ips[0];
  if (!first) {
    throw new PluginError(
      PluginErrorCode.InvalidConfig,
      `prevResult has no address for interface ${ifname}`,
      "the plugin before catena-cni must assign one (an IPAM plugin)",
    );
  }
  return first.address;
}

function runtimeLabels(runtimeConfig: Record<string, unknown>): Record<string, string> {
  const raw = runtimeConfig.labels;
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) return {};
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(raw)) if (typeof v === "string") out[k] = v;
  return out;
}
