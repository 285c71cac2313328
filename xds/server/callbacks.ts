// Hooks into the server's life (go-control-plane's Callbacks): all optional, none may block a stream
// except onStreamOpen, which decides whether the node may connect at all.
import type { Node } from "../node.js";
import type { RpcStatus } from "../wire/discovery.js";

export type Admission = { ok: true } | { ok: false; reason: string };

export type StreamVariant = "sotw" | "delta";

export interface StreamInfo {
  streamId: number;
  node: Node;
  variant: StreamVariant;
  /** The type of the first request; per-type services only ever carry this one. */
  typeUrl: string;
  peer: string;
}

export interface AckEvent {
  streamId: number;
  node: Node;
  typeUrl: string;
  version: string;
}

export interface NackEvent extends AckEvent {
  /** The version the client rejected (the one this server sent); `version` is that too. */
  errorDetail: RpcStatus;
}

export interface ServerCallbacks {
  /** Identity check when a stream opens; a refusal ends it with PERMISSION_DENIED and the reason. */
  onStreamOpen?(info: StreamInfo): Admission | Promise<Admission>;
  onStreamClosed?(info: StreamInfo): void;
  onAck?(event: AckEvent): void;
  onNack?(event: NackEvent): void;
}
