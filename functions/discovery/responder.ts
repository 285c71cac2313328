// What the server answers to one query, apart from sockets (so tests and the fuzzer drive it directly).
// In the zone: the precomputed RRset, NODATA (the name exists, the type does not) or NXDOMAIN, both with
// the SOA for negative caching. Outside: forwarded when an upstream is configured, else REFUSED.
import type { Upstream } from "./upstream.js";
import {
  buildResponse,
  CLASS_ANY,
  CLASS_IN,
  EMPTY_TAIL,
  headerOnlyResponse,
  nameKey,
  ParsedQuery,
  parseQuery,
  RCODE,
  TYPE,
  UDP_MAX_PAYLOAD,
  UDP_MIN_PAYLOAD,
} from "./wire.js";
import type { Zone } from "./zone.js";

export type Transport = "udp" | "tcp";

/** Counters only: nothing is logged per query. */
export interface ResponderStats {
  queries: number;
  answered: number;
  nodata: number;
  nxdomain: number;
  refused: number;
  formerr: number;
  notimp: number;
  servfail: number;
  truncated: number;
  forwarded: number;
  dropped: number;
}

export function emptyStats(): ResponderStats {
  return {
    queries: 0,
    answered: 0,
    nodata: 0,
    nxdomain: 0,
    refused: 0,
    formerr: 0,
    notimp: 0,
    servfail: 0,
    truncated: 0,
    forwarded: 0,
    dropped: 0,
  };
}

export class Responder {
  readonly stats = emptyStats();
  readonly #zone: Zone;
  readonly #upstream: Upstream | undefined;
  readonly #q = new ParsedQuery();

  constructor(zone: Zone, upstream?: Upstream) {
    this.#zone = zone;
    this.#upstream = upstream;
  }

  /**
   * The answer to one packet: bytes, a promise of bytes (forwarded), or undefined (nothing to send).
   * Never throws: whatever goes wrong becomes SERVFAIL for that query alone.
   */
  respond(bytes: Uint8Array, transport: Transport): Buffer | Promise<Buffer | undefined> | undefined {
    this.stats.queries++;
    const packet = Buffer.isBuffer(bytes)
      ? bytes
      : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const q = this.#q;
    try {
      const parsed = parseQuery(packet, packet.length, q);
      if (parsed === "drop") {
        this.stats.dropped++;
        return undefined;
      }
      if (parsed !== "ok") {
        if (parsed === RCODE.FORMERR) this.stats.formerr++;
        else this.stats.notimp++;
        return headerOnlyResponse(q, parsed);
      }
      return this.#answer(packet, q, transport);
    } catch {
      this.stats.servfail++;
      return packet.length >= 12 ? headerOnlyResponse(q, RCODE.SERVFAIL) : undefined;
    }
  }

  #answer(packet: Buffer, q: ParsedQuery, transport: Transport): Buffer | Promise<Buffer | undefined> {
    const zone = this.#zone;
    const max =
      transport === "tcp"
        ? 65535
        : q.edns
          ? Math.min(Math.max(q.udpSize, UDP_MIN_PAYLOAD), UDP_MAX_PAYLOAD)
          : 512;
    const ra = this.#upstream !== undefined;
    if (q.edns && q.ednsVersion > 0) {
      this.stats.formerr++;
      return buildResponse(packet, q, { rcode: RCODE.BADVERS, aa: false, ra, tail: EMPTY_TAIL }, max);
    }
    const key = nameKey(packet, q);
    const inZone = zone.contains(key);
    if (!inZone) return this.#outside(packet, q, transport, max);
    if (q.qclass !== CLASS_IN && q.qclass !== CLASS_ANY) {
      this.stats.refused++;
      return buildResponse(packet, q, { rcode: RCODE.REFUSED, aa: false, ra, tail: EMPTY_TAIL }, max);
    }
    if (q.qtype === TYPE.AXFR || q.qtype === TYPE.IXFR) {
      this.stats.refused++;
      return buildResponse(packet, q, { rcode: RCODE.REFUSED, aa: false, ra, tail: EMPTY_TAIL }, max);
    }
    const entry = zone.get(key);
    const apexAt = q.labels[q.labelCount - zone.zoneLabels] ?? 12;
    if (!entry) {
      this.stats.nxdomain++;
      const authority = zone.soaAuthority(apexAt);
      return buildResponse(
        packet,
        q,
        { rcode: RCODE.NXDOMAIN, aa: true, ra, tail: EMPTY_TAIL, authority },
        max,
      );
    }
    const orders = entry.rrsets.get(q.qtype);
    if (!orders || orders.length === 0) {
      this.stats.nodata++;
      const authority = zone.soaAuthority(apexAt);
      return buildResponse(
        packet,
        q,
        { rcode: RCODE.NOERROR, aa: true, ra, tail: EMPTY_TAIL, authority },
        max,
      );
    }
    const tail = orders[entry.turn++ % orders.length] ?? EMPTY_TAIL;
    if (entry.turn >= 0x3fffffff) entry.turn = 0;
    const out = buildResponse(packet, q, { rcode: RCODE.NOERROR, aa: true, ra, tail }, max);
    if ((out[2] as number) & 0x02) this.stats.truncated++;
    else this.stats.answered++;
    return out;
  }

  #outside(
    packet: Buffer,
    q: ParsedQuery,
    transport: Transport,
    max: number,
  ): Buffer | Promise<Buffer | undefined> {
    const upstream = this.#upstream;
    if (!upstream) {
      this.stats.refused++;
      return buildResponse(packet, q, { rcode: RCODE.REFUSED, aa: false, ra: false, tail: EMPTY_TAIL }, max);
    }
    this.stats.forwarded++;
    // The parsed query is reused by the next packet: keep what the fallback needs.
    const id = q.id;
    const rd = q.rd;
    const forwarded = transport === "tcp" ? upstream.forwardTcp(packet) : upstream.forwardUdp(packet);
    return forwarded.then((answer) => {
      if (answer) return answer;
      this.stats.servfail++;
      const failed = new ParsedQuery();
      failed.id = id;
      failed.rd = rd;
      return headerOnlyResponse(failed, RCODE.SERVFAIL);
    });
  }
}
