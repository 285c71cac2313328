// The transport the event publisher writes to: NATS JetStream (nats-bus.ts) or an in-process bus
// (memory-bus.ts) when `catena up` runs without NATS. Same subjects and wildcard rules in both.
import type { BoundedWatch } from "./channel.js";

export interface BusMessage {
  subject: string;
  data: Uint8Array;
  headers: Record<string, string>;
}

export interface BusStatus {
  /** True when a publish can be stored now (for NATS: connected and the stream is in place). */
  connected: boolean;
  /** What the bus is talking to, or why it cannot: `nats://127.0.0.1:4222`, `reconnecting`. */
  detail: string;
}

export type BusSubscription = BoundedWatch<BusMessage>;

export interface EventBus {
  readonly kind: "nats" | "memory";
  /**
   * Resolves once the message is stored (JetStream: acknowledged); waits through disconnections.
   * Messages are stored in call order, and a `msgId` seen again within the duplicate window is
   * stored once. Rejects only on a permanent error (coded `CATENA_INVALID`) or after close/destroy
   * (`CATENA_CLOSED`).
   */
  publish(
    subject: string,
    payload: Uint8Array,
    headers: Record<string, string>,
    msgId: string,
  ): Promise<void>;
  /** Live messages on a subject pattern (`*`, `>`); a consumer that falls behind loses the oldest. */
  subscribe(pattern: string, options?: { queueSize?: number }): BusSubscription;
  status(): BusStatus;
  /** The current status first, then every change. */
  statusChanges(): BoundedWatch<BusStatus>;
  /** Waits (bounded) for pending publishes, then disconnects. Idempotent. */
  close(timeoutMs?: number): Promise<void>;
  /** Aborts: pending publishes reject with `CATENA_CLOSED`. Idempotent. */
  destroy(err?: Error): Promise<void>;
}
