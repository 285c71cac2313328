// The DNS wire format on the query path. Answers are precomputed (zone.ts) as byte tails whose names
// point at the question (always at offset 12), so answering is: read the header and question, look the
// name up, copy header + question + tail. dns-packet (a general codec) would allocate an object tree per
// query; it is used where generality matters instead: forwarding, tests, and building nothing hot.

export const TYPE = {
  A: 1,
  NS: 2,
  SOA: 6,
  AAAA: 28,
  SRV: 33,
  OPT: 41,
  IXFR: 251,
  AXFR: 252,
  ANY: 255,
} as const;
export const CLASS_IN = 1;
export const CLASS_ANY = 255;

export const RCODE = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  /** Extended (EDNS): 16 = 0x10, upper 8 bits go into the OPT record. */
  BADVERS: 16,
} as const;

export const HEADER_LENGTH = 12;
/** Classic DNS over UDP without EDNS. */
export const UDP_MIN_PAYLOAD = 512;
/** What we advertise and the most we send over UDP (the DNS flag day 2020 value). */
export const UDP_MAX_PAYLOAD = 1232;
const MAX_NAME = 255;

const FLAG_QR = 0x8000;
const FLAG_AA = 0x0400;
const FLAG_TC = 0x0200;
const FLAG_RD = 0x0100;

/** What the query path needs of a query; one object reused for every packet (no allocation). */
export class ParsedQuery {
  id = 0;
  /** The RD bit, echoed. */
  rd = false;
  opcode = 0;
  /** End of the question's name (exclusive); the question is [12, questionEnd). */
  nameEnd = 0;
  questionEnd = 0;
  qtype = 0;
  qclass = 0;
  /** Label starts, offsets into the packet (labelCount of them), for the zone-suffix check. */
  readonly labels = new Int32Array(128);
  labelCount = 0;
  edns = false;
  ednsVersion = 0;
  /** The requester's UDP payload size (>= 512). */
  udpSize = UDP_MIN_PAYLOAD;
  dnssecOk = false;
}

/** drop: not worth an answer (too short to carry an id, or itself a response). */
export type ParseResult = "ok" | "drop" | typeof RCODE.FORMERR | typeof RCODE.NOTIMP;

/** Reads a query into `q`. Never throws; anything malformed is FORMERR once the id is known. */
export function parseQuery(buf: Uint8Array, len: number, q: ParsedQuery): ParseResult {
  if (len < HEADER_LENGTH) return "drop";
  q.id = (buf[0] as number) * 256 + (buf[1] as number);
  const flags = (buf[2] as number) * 256 + (buf[3] as number);
  if ((flags & FLAG_QR) !== 0) return "drop";
  q.rd = (flags & FLAG_RD) !== 0;
  q.opcode = (flags >> 11) & 0xf;
  q.edns = false;
  q.ednsVersion = 0;
  q.udpSize = UDP_MIN_PAYLOAD;
  q.dnssecOk = false;
  q.labelCount = 0;
  q.nameEnd = q.questionEnd = HEADER_LENGTH;
  if (q.opcode !== 0) return RCODE.NOTIMP;
  const qd = u16(buf, 4);
  const an = u16(buf, 6);
  const ns = u16(buf, 8);
  const ar = u16(buf, 10);
  if (qd !== 1) return RCODE.FORMERR;
  // The question's name: uncompressed labels (nothing precedes it to point at).
  let p = HEADER_LENGTH;
  for (;;) {
    if (p >= len) return RCODE.FORMERR;
    const l = buf[p] as number;
    if (l === 0) {
      p++;
      break;
    }
    if (l > 63 || q.labelCount >= 127) return RCODE.FORMERR;
    q.labels[q.labelCount++] = p;
    p += l + 1;
    if (p - HEADER_LENGTH > MAX_NAME - 1) return RCODE.FORMERR;
  }
  q.nameEnd = p;
  if (p + 4 > len) return RCODE.FORMERR;
  q.qtype = u16(buf, p);
  q.qclass = u16(buf, p + 2);
  p += 4;
  q.questionEnd = p;
  // Answer and authority records are unusual in a query but legal: skip them.
  for (let i = 0; i < an + ns; i++) {
    p = skipRecord(buf, len, p);
    if (p < 0) return RCODE.FORMERR;
  }
  for (let i = 0; i < ar; i++) {
    const start = p;
    p = skipName(buf, len, p);
    if (p < 0 || p + 10 > len) return RCODE.FORMERR;
    const type = u16(buf, p);
    const rdlen = u16(buf, p + 8);
    if (p + 10 + rdlen > len) return RCODE.FORMERR;
    if (type === TYPE.OPT) {
      // One OPT at most, owned by the root (RFC 6891 6.1.1).
      if (q.edns || p !== start + 1) return RCODE.FORMERR;
      q.edns = true;
      q.udpSize = Math.max(UDP_MIN_PAYLOAD, u16(buf, p + 2));
      q.ednsVersion = buf[p + 5] as number;
      q.dnssecOk = ((buf[p + 6] as number) & 0x80) !== 0;
    }
    p += 10 + rdlen;
  }
  return "ok";
}

function u16(buf: Uint8Array, at: number): number {
  return (buf[at] as number) * 256 + (buf[at + 1] as number);
}

/** The offset after a (possibly compressed) name, or -1. */
function skipName(buf: Uint8Array, len: number, p: number): number {
  let total = 0;
  for (;;) {
    if (p >= len) return -1;
    const l = buf[p] as number;
    if (l === 0) return p + 1;
    if ((l & 0xc0) === 0xc0) return p + 2 <= len ? p + 2 : -1;
    if (l > 63) return -1;
    total += l + 1;
    if (total > MAX_NAME) return -1;
    p += l + 1;
  }
}

function skipRecord(buf: Uint8Array, len: number, p: number): number {
  p = skipName(buf, len, p);
  if (p < 0 || p + 10 > len) return -1;
  const end = p + 10 + u16(buf, p + 8);
  return end <= len ? end : -1;
}

/** The question's name as a lookup key: the wire labels, ASCII lower-cased, as a latin1 string. */
export function nameKey(buf: Buffer, q: ParsedQuery): string {
  let upper = false;
  for (let i = HEADER_LENGTH; i < q.nameEnd; i++) {
    const c = buf[i] as number;
    if (c >= 65 && c <= 90) {
      upper = true;
      break;
    }
  }
  const key = buf.toString("latin1", HEADER_LENGTH, q.nameEnd);
  // Only ASCII letters fold (DNS is case-insensitive in ASCII alone); keys in the zone are ASCII, so a
  // name with other bytes cannot match whatever toLowerCase does to them.
  return upper ? key.toLowerCase() : key;
}

/** "web.catena." → the wire-format key that nameKey gives for it. */
export function keyOf(name: string): string {
  let key = "";
  for (const label of name.toLowerCase().split(".")) {
    if (label === "") continue;
    key += String.fromCharCode(label.length) + label;
  }
  return `${key}\u0000`;
}

/** The bytes after the question: answer, authority and additional records, with their counts. */
export interface Tail {
  readonly bytes: Uint8Array;
  readonly an: number;
  readonly ns: number;
  readonly ar: number;
}

export const EMPTY_TAIL: Tail = { bytes: new Uint8Array(0), an: 0, ns: 0, ar: 0 };

/** The OPT record we send: root owner, our payload size, extended rcode, version 0, DO echoed. */
const OPT_LENGTH = 11;

function writeOpt(out: Uint8Array, at: number, extendedRcode: number, dnssecOk: boolean): void {
  out[at] = 0;
  out[at + 1] = 0;
  out[at + 2] = TYPE.OPT;
  out[at + 3] = UDP_MAX_PAYLOAD >> 8;
  out[at + 4] = UDP_MAX_PAYLOAD & 0xff;
  out[at + 5] = extendedRcode;
  out[at + 6] = 0;
  out[at + 7] = dnssecOk ? 0x80 : 0;
  out[at + 8] = 0;
  out[at + 9] = 0;
  out[at + 10] = 0;
}

export interface ResponseParts {
  rcode: number;
  /** Authoritative (names in our zone). */
  aa: boolean;
  /** Recursion available (an upstream is configured). */
  ra: boolean;
  /** Precomputed records (answers point at offset 12). */
  tail: Tail;
  /** A record written per query before the tail's bytes in the authority section (the negative SOA). */
  authority?: Uint8Array | undefined;
}

/**
 * Header + the query's own question + records (+ OPT when the query had EDNS). Over UDP, an answer
 * larger than the requester can take is sent with TC set and no records: the client retries over TCP.
 */
export function buildResponse(query: Buffer, q: ParsedQuery, parts: ResponseParts, maxSize: number): Buffer {
  const questionLength = q.questionEnd - HEADER_LENGTH;
  const extended = parts.rcode >> 4;
  const optLength = q.edns ? OPT_LENGTH : 0;
  const authLength = parts.authority?.length ?? 0;
  let size = HEADER_LENGTH + questionLength + authLength + parts.tail.bytes.length + optLength;
  const truncated = size > maxSize;
  if (truncated) size = HEADER_LENGTH + questionLength + optLength;
  const out = Buffer.allocUnsafe(size);
  out[0] = q.id >> 8;
  out[1] = q.id & 0xff;
  let flags = FLAG_QR | (parts.rcode & 0xf);
  if (parts.aa) flags |= FLAG_AA;
  if (q.rd) flags |= FLAG_RD;
  if (parts.ra) flags |= 0x0080;
  if (truncated) flags |= FLAG_TC;
  out[2] = flags >> 8;
  out[3] = flags & 0xff;
  const authorityCount = authLength > 0 ? 1 : 0;
  const an = truncated ? 0 : parts.tail.an;
  const ns = truncated ? 0 : parts.tail.ns + authorityCount;
  const ar = (truncated ? 0 : parts.tail.ar) + (q.edns ? 1 : 0);
  out[4] = 0;
  out[5] = questionLength > 0 ? 1 : 0;
  out[6] = an >> 8;
  out[7] = an & 0xff;
  out[8] = ns >> 8;
  out[9] = ns & 0xff;
  out[10] = ar >> 8;
  out[11] = ar & 0xff;
  let p = HEADER_LENGTH;
  if (questionLength > 0) {
    query.copy(out, p, HEADER_LENGTH, q.questionEnd);
    p += questionLength;
  }
  if (!truncated) {
    // Negative answers carry only the SOA; positive ones only the tail's answers and additionals.
    if (parts.authority) {
      out.set(parts.authority, p);
      p += authLength;
    }
    out.set(parts.tail.bytes, p);
    p += parts.tail.bytes.length;
  }
  if (q.edns) writeOpt(out, p, extended, q.dnssecOk);
  return out;
}

/** A header-only answer (FORMERR, NOTIMP): the id echoed, no question, no records. */
export function headerOnlyResponse(q: ParsedQuery, rcode: number): Buffer {
  const out = Buffer.alloc(HEADER_LENGTH);
  out.writeUInt16BE(q.id, 0);
  out.writeUInt16BE(FLAG_QR | (q.opcode << 11) | (q.rd ? FLAG_RD : 0) | (rcode & 0xf), 2);
  return out;
}

// --- Writing records (used when precomputing, never per query) ------------------------------------

/** A growable byte writer for precomputing tails. */
export class RecordWriter {
  #buf = Buffer.alloc(512);
  #len = 0;
  count = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): void {
    if (this.#len + n <= this.#buf.length) return;
    const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
    this.#buf.copy(next, 0, 0, this.#len);
    this.#buf = next;
  }

  u8(v: number): this {
    this.#reserve(1);
    this.#buf[this.#len++] = v;
    return this;
  }

  u16(v: number): this {
    this.#reserve(2);
    this.#buf.writeUInt16BE(v, this.#len);
    this.#len += 2;
    return this;
  }

  u32(v: number): this {
    this.#reserve(4);
    this.#buf.writeUInt32BE(v >>> 0, this.#len);
    this.#len += 4;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.#reserve(b.length);
    this.#buf.set(b, this.#len);
    this.#len += b.length;
    return this;
  }

  /** A pointer to an earlier name at `offset` (counted from the message start). */
  pointer(offset: number): this {
    return this.u16(0xc000 | offset);
  }

  /** Labels of `name` ("a.b." or "a.b"), then either a pointer (`suffixAt`) or the root. */
  labels(name: string, suffixAt?: number): this {
    for (const label of name.split(".")) {
      if (label === "") continue;
      this.u8(label.length);
      for (let i = 0; i < label.length; i++) this.u8(label.charCodeAt(i));
    }
    return suffixAt === undefined ? this.u8(0) : this.pointer(suffixAt);
  }

  /** Owner, type, class IN, ttl; then rdata written by `rdata`, its length patched in. */
  record(
    owner: (w: RecordWriter) => void,
    type: number,
    ttl: number,
    rdata: (w: RecordWriter) => void,
  ): this {
    owner(this);
    this.u16(type).u16(CLASS_IN).u32(ttl);
    const lengthAt = this.#len;
    this.u16(0);
    rdata(this);
    this.#buf.writeUInt16BE(this.#len - lengthAt - 2, lengthAt);
    this.count++;
    return this;
  }

  take(): Uint8Array {
    return Uint8Array.prototype.slice.call(this.#buf, 0, this.#len);
  }
}
