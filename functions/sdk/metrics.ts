// The host's metrics, OpenTelemetry instruments exported as Prometheus text by the admin server (no
// exporter server of its own). The data path only bumps plain numbers in a ListenerStats (per
// connection, never per chunk); OpenTelemetry reads them through observable instruments at scrape
// time, so a connection costs no attribute hashing.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Attributes, Counter, Meter, ObservableResult } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";
import type { MetricCounter } from "./define-function.js";

export interface EndpointHealthSample {
  cluster: string;
  endpoint: string;
  healthy: boolean;
}

/** Why the host closed a connection before any filter saw it, or after they accepted it. */
export type RefusalReason =
  | "untrusted_source"
  | "proxy_header"
  | "no_cluster"
  | "upstream_unavailable"
  | "draining";

/** One listener's counters (by name, across its generations); plain fields the data path increments. */
export class ListenerStats {
  connections = 0;
  active = 0;
  bytesIn = 0;
  bytesOut = 0;
  readonly denied = new Map<string, number>();
  readonly refused = new Map<RefusalReason, number>();

  deny(reason: string): void {
    // Reasons come from filters: bound the label set so a buggy filter cannot grow it forever.
    const r = this.denied.has(reason) || this.denied.size < 64 ? reason : "other";
    this.denied.set(r, (this.denied.get(r) ?? 0) + 1);
  }

  refuse(reason: RefusalReason): void {
    this.refused.set(reason, (this.refused.get(reason) ?? 0) + 1);
  }
}

export interface MetricSources {
  endpointHealth: () => EndpointHealthSample[];
  eventsDropped: () => number;
  listeners: () => Iterable<[string, ListenerStats]>;
}

export class HostMetrics {
  readonly meter: Meter;
  readonly configRejected: Counter;
  readonly #exporter: PrometheusExporter;
  readonly #provider: MeterProvider;
  readonly #pluginCounters = new Map<string, Counter>();

  constructor(sources: MetricSources) {
    this.#exporter = new PrometheusExporter({ preventServerStart: true });
    this.#provider = new MeterProvider({ readers: [this.#exporter] });
    const m = this.#provider.getMeter("catena-function");
    this.meter = m;
    const perListener = (
      name: string,
      description: string,
      kind: "counter" | "gauge",
      read: (l: ListenerStats) => number,
    ) => {
      const inst =
        kind === "counter"
          ? m.createObservableCounter(name, { description })
          : m.createObservableGauge(name, { description });
      inst.addCallback((r: ObservableResult) => {
        for (const [listener, l] of sources.listeners()) r.observe(read(l), { listener });
      });
    };
    perListener("catena_connections", "Connections accepted by a listener", "counter", (l) => l.connections);
    perListener("catena_connections_active", "Connections open through a listener", "gauge", (l) => l.active);
    perListener(
      "catena_bytes_in",
      "Bytes from downstream sent upstream (at close)",
      "counter",
      (l) => l.bytesIn,
    );
    perListener(
      "catena_bytes_out",
      "Bytes from upstream sent downstream (at close)",
      "counter",
      (l) => l.bytesOut,
    );
    const byReason = (name: string, description: string, read: (l: ListenerStats) => Map<string, number>) =>
      m.createObservableCounter(name, { description }).addCallback((r: ObservableResult) => {
        for (const [listener, l] of sources.listeners())
          for (const [reason, n] of read(l)) r.observe(n, { listener, reason });
      });
    byReason(
      "catena_connections_denied",
      "Connections a filter denied (closed with nothing sent)",
      (l) => l.denied,
    );
    byReason(
      "catena_connections_refused",
      "Connections the host closed: untrusted source, bad PROXY header, no cluster, no upstream",
      (l) => l.refused,
    );
    this.configRejected = m.createCounter("catena_config_rejected", {
      description: "xDS resources rejected (NACKed)",
    });
    m.createObservableGauge("catena_endpoint_healthy", {
      description: "1 when an upstream endpoint is available for balancing",
    }).addCallback((r: ObservableResult) => {
      for (const s of sources.endpointHealth())
        r.observe(s.healthy ? 1 : 0, { cluster: s.cluster, endpoint: s.endpoint });
    });
    m.createObservableCounter("catena_events_dropped", {
      description: "Events dropped because the event bus was unreachable",
    }).addCallback((r: ObservableResult) => r.observe(sources.eventsDropped()));
  }

  /** A plugin's counter `catena_<plugin>_<name>`, bound to a scope's attributes. */
  pluginCounter(plugin: string, name: string, description: string, attributes: Attributes): MetricCounter {
    const key = `catena_${plugin}_${name}`.replace(/[^a-zA-Z0-9_]/g, "_");
    let c = this.#pluginCounters.get(key);
    if (!c) {
      c = this.meter.createCounter(key, { description });
      this.#pluginCounters.set(key, c);
    }
    const counter = c;
    return { add: (n = 1) => counter.add(n, attributes) };
  }

  serve(request: IncomingMessage, response: ServerResponse): void {
    this.#exporter.getMetricsRequestHandler(request, response);
  }

  async shutdown(): Promise<void> {
    await this.#provider.shutdown().catch(() => {});
  }
}
