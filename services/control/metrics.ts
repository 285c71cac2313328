// OpenTelemetry metrics, read by Prometheus from the API's /metrics (no second port).
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Meter } from "@opentelemetry/api";
import { PrometheusExporter } from "@opentelemetry/exporter-prometheus";
import { MeterProvider } from "@opentelemetry/sdk-metrics";

export interface Metrics {
  meter: Meter;
  /** Writes the Prometheus text exposition to a raw Node response. */
  serve(request: IncomingMessage, response: ServerResponse): void;
  shutdown(): Promise<void>;
}

export function createMetrics(serviceName: string): Metrics {
  const exporter = new PrometheusExporter({ preventServerStart: true });
  const provider = new MeterProvider({ readers: [exporter] });
  return {
    meter: provider.getMeter(serviceName),
    serve: (request, response) => exporter.getMetricsRequestHandler(request, response),
    shutdown: () => provider.shutdown(),
  };
}
