// The host's metrics, OpenTelemetry instruments exported as Prometheus text by the admin server (no
// exporter server of its own). Counters are added per connection (at accept and at close), never per
// chunk; each listener's attribute set is built once and reused.
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Attributes, Counter, Meter, ObservableResult, UpDownCounter } from "@opentelemetry/api";
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

export class HostMetrics {
  readonly meter: Meter;
  readonly connections: Counter;
  readonly active: UpDownCounter;
  readonly bytesIn: Counter;
  readonly bytesOut: Counter;
  readonly denied: Counter;
  readonly refused: Counter;
  readonly configRejected: Counter;
  readonly #exporter: PrometheusExporter;
  readonly #provider: MeterProvider;
  readonly #pluginCounters = new Map<string, Counter>();

  constructor(sources: { endpointHealth: () => EndpointHealthSample[]; eventsDropped: () => number }) {
    this.#exporter = new PrometheusExporter({ preventServerStart: true });
    this.#provider = new MeterProvider({ readers: [this.#exporter] });
    const m = this.#provider.getMeter("catena-function");
    this.meter = m;
    this.connections = m.createCounter("catena_connections", {
      description: "Connections accepted by a listener",
    });
    this.active = m.createUpDownCounter("catena_connections_active", {
      description: "Connections open through a listener",
    });
    this.bytesIn = m.createCounter("catena_bytes_in", {
      description: "Bytes from downstream sent upstream (counted when a connection closes)",
    });
    this.bytesOut = m.createCounter("catena_bytes_out", {
      description: "Bytes from upstream sent downstream (counted when a connection closes)",
    });
    this.denied = m.createCounter("catena_connections_denied", {
      description: "Connections a filter denied (closed with nothing sent)",
    });
    this.refused = m.createCounter("catena_connections_refused", {
      description: "Connections the host closed: untrusted source, bad PROXY header, no cluster, no upstream",
    });
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
