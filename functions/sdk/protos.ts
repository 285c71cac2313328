// Proto types the host decodes beyond Envoy's (xds/ loads those, the PROXY protocol listener filter and
// upstream transport socket included): Catena's own catena.v1.Bandwidth. Without it protobufjs would
// hand the bandwidth filter's typed_config over as an opaque Any.
import { loadCatenaProtos } from "../../proto/catena/v1/protos.js";

/** Idempotent; the host calls it before its first subscription, tests before building resources. */
export function loadHostProtos(): void {
  loadCatenaProtos();
}
