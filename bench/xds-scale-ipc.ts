// What bench/xds-scale.ts and its child processes (xds-scale-clients.ts, xds-scale-floor.ts) say to
// each other over the fork IPC channel, and the clock they share.

/** Milliseconds on CLOCK_MONOTONIC (process.hrtime), the same clock in every process of the machine. */
export function nowMs(): number {
  return Number(process.hrtime.bigint() / 1000n) / 1000;
}

export type Mode = "delta" | "sotw";

export interface Subscription {
  typeUrl: string;
  /** "*" for every resource of the type, else these names. */
  names: "*" | string[];
}

export interface ClientSpec {
  id: string;
  mode: Mode;
  subs: Subscription[];
}

/** What one client received of one type since the last mark. */
export interface TypeStats {
  messages: number;
  /** Serialized size of the (Delta)DiscoveryResponses, as read off the stream. */
  bytes: number;
  resources: number;
  removed: number;
  /** nowMs() of the first response and of the ACK written for it; 0 when none. */
  firstRecv: number;
  firstAck: number;
}

export interface ClientReport {
  id: string;
  mode: Mode;
  wildcard: boolean;
  types: Record<string, TypeStats>;
  errors: string[];
}

export type ToClients =
  | { cmd: "connect"; addr: string; clients: ClientSpec[]; batch: number }
  | { cmd: "mark"; waitTypes: string[] }
  | { cmd: "collect" }
  | { cmd: "disconnect" };

export type FromClients =
  | { ev: "ready" }
  | { ev: "connected"; ms: number }
  | { ev: "marked" }
  | { ev: "done"; at: number }
  | { ev: "collected"; reports: ClientReport[] }
  | { ev: "disconnected" }
  | { ev: "failed"; error: string };

export interface FloorEndpoint {
  address: string;
  port: number;
}

/** A Service document as the bench applies it; the floor compiles the same documents. */
export interface ServiceDoc {
  apiVersion: string;
  kind: "Service";
  metadata: { name: string };
  spec: { network: string; ports: { name: string; port: number }[]; endpoints: FloorEndpoint[] };
}

export function serviceDoc(name: string, endpoints: FloorEndpoint[]): ServiceDoc {
  return {
    apiVersion: "catena.dev/v1alpha1",
    kind: "Service",
    metadata: { name },
    spec: { network: "bench", ports: [{ name: "http", port: 80 }], endpoints },
  };
}

export type ToFloor =
  | { cmd: "init"; services: ServiceDoc[] }
  | { cmd: "push"; service: ServiceDoc }
  | { cmd: "acks" };

export type FromFloor =
  | { ev: "listening"; port: number }
  | { ev: "ready" }
  | { ev: "pushed"; start: number; published: number }
  /** Nodes connected now, and how many of them have ACKed every type's last sent version. */
  | { ev: "acks"; connected: number; acked: number }
  | { ev: "failed"; error: string };
