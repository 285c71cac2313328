// The authoritative zone as precomputed answers. When a service's endpoints change, every name it owns
// is rebuilt (and only those): `<service>.<zone>` A/AAAA, `_<port>._tcp.<service>.<zone>` SRV with the
// targets' addresses as additional records, each target `<host>.<service>.<zone>`, and the empty
// non-terminal `_tcp.<service>.<zone>`. Each RRset is kept in several orders, served in turn (the
// "shuffled order"): rotations for up to 8 records, random permutations beyond.
import { parseIp } from "../sdk/ip-address.js";
import { keyOf, RecordWriter, type Tail, TYPE } from "./wire.js";

/** A healthy endpoint of a service, as the zone answers it. */
export interface ZoneEndpoint {
  address: string;
  port: number;
  weight: number;
  /** The Service port it serves (SRV `_<portName>._tcp`). */
  portName?: string | undefined;
}

export interface ZoneOptions {
  /** Absolute zone name, "catena." */
  zone: string;
  /** TTL of every record, and the negative-caching TTL (SOA minimum). */
  ttlSeconds: number;
  /** IPv4/IPv6 address answered for `ns.<zone>` (the server's own), when it is a specific address. */
  nsAddress?: string | undefined;
}

/** What a name holds: its RRsets by type, each in several orders. */
export interface NameEntry {
  readonly rrsets: Map<number, Tail[]>;
  /** Which order to serve next. */
  turn: number;
}

const MAX_ORDERS = 8;
const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;
const HEADER = 12;

export class Zone {
  readonly zone: string;
  /** The zone apex as a name key (wire labels, lower case). */
  readonly zoneKey: string;
  readonly zoneLabels: number;
  readonly #ttl: number;
  readonly #nsAddress: string | undefined;
  readonly #names = new Map<string, NameEntry>();
  readonly #byService = new Map<string, string[]>();
  #serial: number;
  /** The SOA record after its owner name (type, class, ttl, rdata); owners point into the question. */
  #soaRest: Uint8Array = new Uint8Array(0);

  constructor(options: ZoneOptions) {
    const zone = options.zone.toLowerCase().replace(/\.?$/, ".");
    this.zone = zone;
    this.zoneKey = keyOf(zone);
    this.zoneLabels = zone.split(".").filter((l) => l !== "").length;
    this.#ttl = options.ttlSeconds;
    this.#nsAddress = options.nsAddress;
    this.#serial = Math.floor(Date.now() / 1000) >>> 0;
    this.#rebuildApex();
  }

  get serial(): number {
    return this.#serial;
  }

  /** Names the zone answers for (apex names included). */
  get size(): number {
    return this.#names.size;
  }

  services(): IterableIterator<string> {
    return this.#byService.keys();
  }

  get(key: string): NameEntry | undefined {
    return this.#names.get(key);
  }

  /** Whether the question's name lies in the zone: its last zoneLabels labels are the apex. */
  contains(key: string): boolean {
    if (!key.endsWith(this.zoneKey)) return false;
    if (key.length === this.zoneKey.length) return true;
    // Walk the labels so "xcatena." never passes for "catena.".
    let p = 0;
    const boundary = key.length - this.zoneKey.length;
    while (p < boundary) p += key.charCodeAt(p) + 1;
    return p === boundary;
  }

  /** The negative answer's authority record: the SOA, owned by the apex inside the question's name. */
  soaAuthority(apexOffset: number): Uint8Array {
    const out = new Uint8Array(2 + this.#soaRest.length);
    out[0] = 0xc0 | (apexOffset >> 8);
    out[1] = apexOffset & 0xff;
    out.set(this.#soaRest, 2);
    return out;
  }

  /** Replaces a service's names (undefined removes them). A name that is not a DNS label is ignored. */
  setService(service: string, endpoints: readonly ZoneEndpoint[] | undefined): void {
    const name = service.toLowerCase();
    for (const key of this.#byService.get(name) ?? []) this.#names.delete(key);
    this.#byService.delete(name);
    this.#bumpSerial();
    if (endpoints === undefined || !LABEL.test(name)) return;
    const owned: string[] = [];
    const put = (fqdn: string, rrsets: Map<number, Tail[]>) => {
      const key = keyOf(fqdn);
      // A service named like another's target or port label would collide: the service wins.
      if (this.#names.has(key) && !owned.includes(key)) return;
      this.#names.set(key, { rrsets, turn: 0 });
      owned.push(key);
    };
    const serviceName = `${name}.${this.zone}`;
    const hosts = new Map<string, { label: string; family: 4 | 6; bytes: Uint8Array }>();
    for (const e of endpoints) {
      const ip = parseIp(e.address);
      if (!ip || hosts.has(e.address)) continue;
      const bytes = ip.family === 4 ? v4Bytes(ip.v4) : ip.bytes;
      hosts.set(e.address, { label: hostLabel(ip.family, bytes), family: ip.family, bytes });
    }
    const ttl = this.#ttl;
    const addressRecord = (
      w: RecordWriter,
      owner: (w: RecordWriter) => void,
      h: { family: 4 | 6; bytes: Uint8Array },
    ) => w.record(owner, h.family === 4 ? TYPE.A : TYPE.AAAA, ttl, (r) => r.bytes(h.bytes));
    const atQuestion = (w: RecordWriter) => w.pointer(HEADER);

    // <service>.<zone>: A, AAAA, and ANY (both at once).
    const v4 = [...hosts.values()].filter((h) => h.family === 4);
    const v6 = [...hosts.values()].filter((h) => h.family === 6);
    const rrsets = new Map<number, Tail[]>();
    if (v4.length > 0)
      rrsets.set(
        TYPE.A,
        orders(v4, (w, h) => addressRecord(w, atQuestion, h)),
      );
    if (v6.length > 0)
      rrsets.set(
        TYPE.AAAA,
        orders(v6, (w, h) => addressRecord(w, atQuestion, h)),
      );
    if (hosts.size > 0)
      rrsets.set(
        TYPE.ANY,
        orders([...v4, ...v6], (w, h) => addressRecord(w, atQuestion, h), 1),
      );
    put(serviceName, rrsets);

    // <host>.<service>.<zone>: the SRV targets.
    for (const h of hosts.values()) {
      const own = new Map<number, Tail[]>();
      const tail = orders([h], (w, x) => addressRecord(w, atQuestion, x));
      own.set(h.family === 4 ? TYPE.A : TYPE.AAAA, tail);
      own.set(TYPE.ANY, tail);
      put(`${h.label}.${serviceName}`, own);
    }

    // _<port>._tcp.<service>.<zone>: SRV; the target names point at the service's name inside the
    // question, which starts after the two service labels.
    const byPort = new Map<string, ZoneEndpoint[]>();
    for (const e of endpoints) {
      if (!e.portName || !LABEL.test(e.portName) || !hosts.has(e.address)) continue;
      const list = byPort.get(e.portName) ?? [];
      list.push(e);
      byPort.set(e.portName, list);
    }
    for (const [port, list] of byPort) {
      const serviceAt = HEADER + (1 + port.length + 1) + (1 + 4);
      const target = (w: RecordWriter, address: string) =>
        w.labels((hosts.get(address) as { label: string }).label, serviceAt);
      const srv = orders(
        list,
        (w, e) =>
          w.record(atQuestion, TYPE.SRV, ttl, (r) => {
            r.u16(0)
              .u16(Math.min(65535, Math.max(0, e.weight)))
              .u16(e.port);
            target(r, e.address);
          }),
        MAX_ORDERS,
        (w) => {
          const seen = new Set<string>();
          for (const e of list) {
            if (seen.has(e.address)) continue;
            seen.add(e.address);
            const h = hosts.get(e.address) as { family: 4 | 6; bytes: Uint8Array };
            addressRecord(w, (o) => target(o, e.address), h);
          }
        },
      );
      put(`_${port}._tcp.${serviceName}`, new Map([[TYPE.SRV, srv]]));
    }
    if (byPort.size > 0) put(`_tcp.${serviceName}`, new Map());
    this.#byService.set(name, owned);
  }

  #bumpSerial(): void {
    this.#serial = (this.#serial + 1) >>> 0;
    this.#rebuildApex();
  }

  /** SOA (its serial moves with every change) and NS at the apex, and `ns.<zone>`. */
  #rebuildApex(): void {
    const ttl = this.#ttl;
    const soa = new RecordWriter();
    soa.u16(TYPE.SOA).u16(1).u32(ttl);
    const lengthAt = soa.length;
    soa.u16(0);
    soa.labels(`ns.${this.zone}`).labels(`hostmaster.${this.zone}`);
    soa.u32(this.#serial).u32(3600).u32(600).u32(86400).u32(ttl);
    const rest = Buffer.from(soa.take());
    rest.writeUInt16BE(rest.length - lengthAt - 2, lengthAt);
    this.#soaRest = rest;

    const apex = new Map<number, Tail[]>();
    const soaAnswer = new Uint8Array(2 + rest.length);
    soaAnswer.set([0xc0, HEADER]);
    soaAnswer.set(rest, 2);
    apex.set(TYPE.SOA, [{ bytes: soaAnswer, an: 1, ns: 0, ar: 0 }]);
    const ns = new RecordWriter();
    ns.record(
      (w) => w.pointer(HEADER),
      TYPE.NS,
      ttl,
      (r) => r.labels("ns", HEADER),
    );
    apex.set(TYPE.NS, [{ bytes: ns.take(), an: 1, ns: 0, ar: 0 }]);
    this.#names.set(this.zoneKey, { rrsets: apex, turn: 0 });

    const nsHost = new Map<number, Tail[]>();
    const ip = this.#nsAddress ? parseIp(this.#nsAddress) : undefined;
    if (ip && !(ip.family === 4 && ip.v4 === 0)) {
      const w = new RecordWriter();
      const bytes = ip.family === 4 ? v4Bytes(ip.v4) : ip.bytes;
      w.record(
        (o) => o.pointer(HEADER),
        ip.family === 4 ? TYPE.A : TYPE.AAAA,
        ttl,
        (r) => r.bytes(bytes),
      );
      nsHost.set(ip.family === 4 ? TYPE.A : TYPE.AAAA, [{ bytes: w.take(), an: 1, ns: 0, ar: 0 }]);
    }
    this.#names.set(keyOf(`ns.${this.zone}`), { rrsets: nsHost, turn: 0 });
  }
}

/**
 * One tail per order of `items`: rotations while there are few (each record leads equally often),
 * random permutations beyond MAX_ORDERS. `extra` writes the additional section (same in every order).
 */
function orders<T>(
  items: readonly T[],
  write: (w: RecordWriter, item: T) => void,
  max = MAX_ORDERS,
  extra?: (w: RecordWriter) => void,
): Tail[] {
  const perms: T[][] = [];
  if (items.length <= 1 || max === 1) perms.push([...items]);
  else if (items.length <= max) {
    for (let r = 0; r < items.length; r++) perms.push([...items.slice(r), ...items.slice(0, r)]);
  } else {
    for (let k = 0; k < max; k++) perms.push(shuffle([...items]));
  }
  return perms.map((perm) => {
    const w = new RecordWriter();
    for (const item of perm) write(w, item);
    const an = w.count;
    extra?.(w);
    return { bytes: w.take(), an, ns: 0, ar: w.count - an };
  });
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j] as T, a[i] as T];
  }
  return a;
}

function v4Bytes(v4: number): Uint8Array {
  return Uint8Array.of(v4 >>> 24, (v4 >>> 16) & 0xff, (v4 >>> 8) & 0xff, v4 & 0xff);
}

/** A target's label: "127-0-0-1" for IPv4, the 32 hex digits for IPv6. */
function hostLabel(family: 4 | 6, bytes: Uint8Array): string {
  if (family === 4) return [...bytes].join("-");
  return Buffer.from(bytes).toString("hex");
}
