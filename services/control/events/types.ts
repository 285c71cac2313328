// What the rest of the control plane sees of the event bus.

/** An event before it is wrapped as a CloudEvent. */
export interface CatenaEvent {
  /** Resource kind in lower case (`servicechain`) or a component (`xds`, `firewall`). */
  kind: string;
  /** The object or instance concerned; the CloudEvents `subject`. */
  name: string;
  /** Past tense: created, updated, deleted, ready, degraded, nacked, denied, throttled... */
  verb: string;
  data?: unknown;
  /**
   * Stable id for this occurrence (becomes the CloudEvents `id` and the JetStream `Nats-Msg-Id`),
   * e.g. derived from the store revision, so replicas publishing the same change collapse to one.
   */
  id?: string;
}

/** The CloudEvents 1.0 structured-mode envelope Catena publishes. */
export interface CloudEvent {
  specversion: "1.0";
  id: string;
  source: string;
  type: string;
  subject: string;
  time: string;
  datacontenttype: "application/json";
  data?: unknown;
}

/** Fire-and-forget: emit never throws and never waits on the network. */
export interface EventSink {
  emit(event: CatenaEvent): void;
}
