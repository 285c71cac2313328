// The only place the function host reads environment variables (DESIGN.md "Contracts: Function
// instance"): what an orchestrator sets instead of flags. Flags given on the command line win.
export interface FunctionEnvironment {
  type?: string;
  functionName?: string;
  nodeId?: string;
  /** Comma-separated host:port list. */
  xdsAddr?: string;
  address?: string;
  adminAddr?: string;
  plugin?: string;
  natsUrl: string;
  natsRoot: string;
}

export const FUNCTION_DEFAULTS = {
  xdsAddr: "127.0.0.1:18000",
  natsUrl: "nats://127.0.0.1:4222",
  natsRoot: "catena",
  adminPort: 9901,
} as const;

function opt(v: string | undefined): string | undefined {
  return v === undefined || v.trim() === "" ? undefined : v.trim();
}

export function readFunctionEnvironment(env: NodeJS.ProcessEnv = process.env): FunctionEnvironment {
  const out: FunctionEnvironment = {
    natsUrl: opt(env.CATENA_NATS_URL) ?? FUNCTION_DEFAULTS.natsUrl,
    natsRoot: opt(env.CATENA_NATS_PREFIX) ?? FUNCTION_DEFAULTS.natsRoot,
  };
  const set = (k: Exclude<keyof FunctionEnvironment, "natsUrl" | "natsRoot">, v: string | undefined) => {
    const x = opt(v);
    if (x !== undefined) out[k] = x;
  };
  set("type", env.CATENA_FUNCTION_TYPE);
  set("functionName", env.CATENA_FUNCTION);
  set("nodeId", env.CATENA_NODE_ID);
  set("xdsAddr", env.CATENA_XDS_ADDR);
  set("address", env.CATENA_ADDRESS);
  set("adminAddr", env.CATENA_ADMIN_ADDR);
  set("plugin", env.CATENA_PLUGIN);
  return out;
}
