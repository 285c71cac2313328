// An example third-party function: counts the bytes of every connection and, when it closes,
// publishes a summary event (`dev.catena.tap.summarized`). It is deployed by manifest with config
// in its own vocabulary; the control server passes that config through as a TypedStruct
// (`type.googleapis.com/catena.plugin.tap`) without knowing the function.
//
//   catena function tap --plugin ./dist/functions/examples/tap/index.js --function edge-tap ...
import { ACCEPT, defineFunction, type FieldError, invalid, type Validated, valid } from "../../sdk/index.js";

export const TAP_TYPE_URL = "type.googleapis.com/catena.plugin.tap";

export interface TapConfig {
  /** Connections that moved fewer bytes (both ways) are not summarised. */
  minBytes: number;
  /** Copied into every summary, to tell taps apart. */
  label: string;
}

export function parseTapConfig(raw: unknown): Validated<TapConfig> {
  const errors: FieldError[] = [];
  const config: TapConfig = { minBytes: 0, label: "" };
  if (raw === null || typeof raw !== "object" || Array.isArray(raw)) {
    return invalid([{ path: "", message: "must be an object" }]);
  }
  for (const [key, value] of Object.entries(raw)) {
    if (key === "minBytes") {
      if (typeof value === "number" && Number.isInteger(value) && value >= 0) config.minBytes = value;
      else errors.push({ path: "minBytes", message: "must be a whole number of bytes, 0 or more" });
    } else if (key === "label") {
      if (typeof value === "string" && value.length <= 63) config.label = value;
      else errors.push({ path: "label", message: "must be a string of at most 63 characters" });
    } else errors.push({ path: key, message: `unknown field "${key}"` });
  }
  return errors.length > 0 ? invalid(errors) : valid(config);
}

export default defineFunction<TapConfig>({
  name: "tap",
  configTypes: [TAP_TYPE_URL],
  parseConfig: (raw) => parseTapConfig(raw),
  createFilter: (config, helper) => {
    const bytes = helper.metrics.counter("bytes", "Bytes seen by the tap, both directions");
    return {
      onConnection: () => ACCEPT,
      // One event per connection, at its end: never per packet.
      onClose: (conn, stats) => {
        const total = stats.bytesUp + stats.bytesDown;
        bytes.add(total);
        if (total < config.minBytes) return;
        helper.emit({
          verb: "summarized",
          data: {
            label: config.label,
            chain: conn.chain,
            hop: helper.scope.hop,
            source: `${conn.source.address}:${conn.source.port}`,
            bytesUp: stats.bytesUp,
            bytesDown: stats.bytesDown,
            durationMs: stats.durationMs,
          },
        });
      },
    };
  },
});
