// Catena's own protobuf types (configs Envoy has no type for), made encodable and decodable through
// xds/'s proto root. Both the control server and the function host call loadCatenaProtos().
import { existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { addProtoFiles } from "../../../xds/index.js";

const PREFIX = "type.googleapis.com/";

export const CATENA_TYPE_URL = {
  bandwidth: `${PREFIX}catena.v1.Bandwidth`,
} as const;

export const CATENA_FILTER_NAME = {
  bandwidth: "catena.filters.network.bandwidth",
} as const;

/** A third-party function type's network filter name: `catena.filters.network.<type>`. */
export function pluginFilterName(type: string): string {
  return `catena.filters.network.${type}`;
}

/** The type URL a third-party type's TypedStruct carries: `type.googleapis.com/catena.plugin.<type>`. */
export function pluginTypeUrl(type: string): string {
  return `${PREFIX}catena.plugin.${type}`;
}

const FILES = ["catena/v1/bandwidth.proto"];

/**
 * The folder holding `catena/v1/*.proto`: beside this module when run from source, and the
 * source tree's `proto/` when run from `dist/proto/catena/v1` (tsc copies no .proto files).
 */
function protoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, "..", ".."), join(here, "..", "..", "..", "..", "proto")];
  for (const dir of candidates) if (existsSync(join(dir, FILES[0] as string))) return dir;
  throw new Error(`catena protos not found (looked in ${candidates.join(", ")})`);
}

let loaded = false;

/** Adds Catena's types to xds/'s proto root; idempotent, cheap after the first call. */
export function loadCatenaProtos(): void {
  if (loaded) return;
  addProtoFiles({ includeDirs: [protoDir()], files: FILES });
  loaded = true;
}
