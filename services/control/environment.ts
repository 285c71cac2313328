// The only place the control plane and CLI read environment variables (DESIGN.md "Contracts").
export interface Environment {
  natsUrl: string;
  natsRoot: string;
  server: string;
  dataDir: string;
}

export const DEFAULTS = {
  apiAddr: "127.0.0.1:7070",
  xdsAddr: "127.0.0.1:18000",
  natsUrl: "nats://127.0.0.1:4222",
  natsRoot: "catena",
  server: "http://127.0.0.1:7070",
  dataDir: ".catena",
} as const;

export function readEnvironment(env: NodeJS.ProcessEnv = process.env): Environment {
  return {
    natsUrl: env.CATENA_NATS_URL || DEFAULTS.natsUrl,
    natsRoot: env.CATENA_NATS_PREFIX || DEFAULTS.natsRoot,
    server: env.CATENA_SERVER || DEFAULTS.server,
    dataDir: env.CATENA_DATA_DIR || DEFAULTS.dataDir,
  };
}

export interface HostPort {
  host: string;
  port: number;
}

/** `HOST:PORT` or `[v6]:PORT`; port 0 asks the OS for a free one. */
export function parseHostPort(text: string, what: string): HostPort {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text.trim());
  const port = match ? Number(match[3]) : Number.NaN;
  if (!match || port > 65535) throw new Error(`${what}: expected HOST:PORT, got "${text}"`);
  return { host: (match[1] ?? match[2]) as string, port };
}
