// An immutable set of resources per type, each with a content version; what one node (or group) gets.
import { createHash } from "node:crypto";
import protobuf from "protobufjs";
import { XDS_ERR, XdsError } from "../errors.js";
import type { Resource } from "../resource.js";
import { decodeAny } from "../resource.js";
import { clusterEdsName } from "../resource-types/cluster.js";
import { listenerRouteNames } from "../resource-types/listener.js";
import { decodeMessageJson } from "../resource-types/resource-type.js";
import { TYPE_URL } from "../type-urls.js";
import type { FieldError } from "../validated.js";

const VERSION_LENGTH = 16;

function hash(data: Uint8Array | string): string {
  return createHash("sha256").update(data).digest("hex").slice(0, VERSION_LENGTH);
}

/** The version of an encoded Any: what servers send and clients compare, in both variants. */
export function contentVersion(any: Uint8Array): string {
  return hash(any);
}

/** A resource with its version (a hash of its encoded Any); encodings are computed once and shared. */
export class VersionedResource implements Resource {
  readonly typeUrl: string;
  readonly name: string;
  readonly any: Uint8Array;
  readonly version: string;
  #delta: Uint8Array | undefined;

  constructor(resource: Resource) {
    this.typeUrl = resource.typeUrl;
    this.name = resource.name;
    this.any = resource.any;
    this.version = hash(resource.any);
  }

  /** The encoded envoy.service.discovery.v3.Resource (name, version, resource) for Delta responses. */
  deltaEncoding(): Uint8Array {
    if (!this.#delta) {
      this.#delta = protobuf.Writer.create()
        .uint32(10)
        .string(this.version)
        .uint32(18)
        .bytes(this.any)
        .uint32(26)
        .string(this.name)
        .finish();
    }
    return this.#delta;
  }
}

/** Version of a set of resources: a hash of the sorted (name, version) pairs. */
export function versionOf(resources: Iterable<{ name: string; version: string }>): string {
  const pairs: string[] = [];
  for (const r of resources) pairs.push(`${r.name}\u0000${r.version}`);
  pairs.sort();
  return hash(pairs.join("\n"));
}

const EMPTY: ReadonlyMap<string, VersionedResource> = new Map();
const EMPTY_VERSION = versionOf([]);

export class Snapshot {
  readonly #byType: ReadonlyMap<string, ReadonlyMap<string, VersionedResource>>;
  readonly #versions = new Map<string, string>();

  private constructor(byType: ReadonlyMap<string, ReadonlyMap<string, VersionedResource>>) {
    this.#byType = byType;
  }

  /** Throws XDS_ERR_INVALID_OPTION when two resources of one type share a name. */
  static from(resources: Iterable<Resource | VersionedResource>): Snapshot {
    const byType = new Map<string, Map<string, VersionedResource>>();
    for (const r of resources) {
      let m = byType.get(r.typeUrl);
      if (!m) {
        m = new Map();
        byType.set(r.typeUrl, m);
      }
      if (m.has(r.name))
        throw new XdsError(XDS_ERR.invalidOption, `duplicate ${r.typeUrl} resource ${r.name}`);
      m.set(r.name, r instanceof VersionedResource ? r : new VersionedResource(r));
    }
    return new Snapshot(byType);
  }

  static empty(): Snapshot {
    return new Snapshot(new Map());
  }

  /** A new snapshot with these resources added or replaced and `remove` names dropped; others are reused. */
  update(upserts: Iterable<Resource>, remove: Iterable<{ typeUrl: string; name: string }> = []): Snapshot {
    const byType = new Map<string, Map<string, VersionedResource>>();
    const own = (typeUrl: string): Map<string, VersionedResource> => {
      let m = byType.get(typeUrl);
      if (!m) {
        m = new Map(this.#byType.get(typeUrl) ?? EMPTY);
        byType.set(typeUrl, m);
      }
      return m;
    };
    for (const r of remove) own(r.typeUrl).delete(r.name);
    for (const r of upserts)
      own(r.typeUrl).set(r.name, r instanceof VersionedResource ? r : new VersionedResource(r));
    for (const [typeUrl, m] of this.#byType) if (!byType.has(typeUrl)) byType.set(typeUrl, new Map(m));
    return new Snapshot(byType);
  }

  typeUrls(): string[] {
    return [...this.#byType.keys()];
  }

  resources(typeUrl: string): ReadonlyMap<string, VersionedResource> {
    return this.#byType.get(typeUrl) ?? EMPTY;
  }

  get(typeUrl: string, name: string): VersionedResource | undefined {
    return this.#byType.get(typeUrl)?.get(name);
  }

  /** Version of every resource of the type together; the same for an absent type as an empty one. */
  version(typeUrl: string): string {
    const m = this.#byType.get(typeUrl);
    if (!m || m.size === 0) return EMPTY_VERSION;
    let v = this.#versions.get(typeUrl);
    if (!v) {
      v = versionOf(m.values());
      this.#versions.set(typeUrl, v);
    }
    return v;
  }

  /**
   * Every EDS name a cluster waits for and every RDS name a listener fetches must exist here, or the
   * client warms forever. Returns the problems; empty when consistent.
   */
  consistent(): FieldError[] {
    const errors: FieldError[] = [];
    const check = (fromType: string, toType: string, refs: (json: Record<string, unknown>) => string[]) => {
      for (const r of this.resources(fromType).values()) {
        const any = decodeAny(r.any);
        const json = any ? decodeMessageJson(fromType, any.value) : undefined;
        if (!json?.ok) {
          errors.push({ path: `${fromType}[${r.name}]`, message: "cannot decode" });
          continue;
        }
        for (const ref of refs(json.value)) {
          if (!this.get(toType, ref))
            errors.push({ path: `${fromType}[${r.name}]`, message: `refers to missing ${toType} ${ref}` });
        }
      }
    };
    check(TYPE_URL.cluster, TYPE_URL.endpoint, (c) => {
      const eds = clusterEdsName(c);
      return eds ? [eds] : [];
    });
    check(TYPE_URL.listener, TYPE_URL.route, listenerRouteNames);
    return errors;
  }
}
