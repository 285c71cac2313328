// PROXY protocol version 2 (haproxy doc/proxy-protocol.txt, section 2.2): the header every connection
// between two hops starts with. Decoding never throws and never allocates for the common case of the
// whole header arriving in the first chunk; encoding writes into a caller-owned buffer.
import { crc32c } from "./crc32c.js";
import { SDK_ERROR, SdkError } from "./errors.js";
import { formatIpv4, formatIpv6, parseIpv4, parseIpv6Into, readV4 } from "./ip-address.js";

/** \r\n\r\n\0\r\nQUIT\n */
export const PROXY_V2_SIGNATURE: Readonly<Uint8Array> = Uint8Array.of(
  0x0d,
  0x0a,
  0x0d,
  0x0a,
  0x00,
  0x0d,
  0x0a,
  0x51,
  0x55,
  0x49,
  0x54,
  0x0a,
);

/** Fixed part: signature, version/command, family/protocol, 16-bit length. */
export const PROXY_V2_FIXED_LENGTH = 16;

/** Catena accepts at most this many header bytes; a longer header is refused before it is buffered. */
export const PROXY_V2_MAX_HEADER_LENGTH = 1024;

export const PP2_TYPE = {
  alpn: 0x01,
  authority: 0x02,
  crc32c: 0x03,
  noop: 0x04,
  uniqueId: 0x05,
  ssl: 0x20,
  netns: 0x30,
  /** Catena, in the spec's custom range 0xE0-0xEF: the chain the connection travels (UTF-8). */
  catenaChain: 0xe0,
  /** Catena: the index of the hop receiving the header (DESIGN.md "Hop resources"), uint16 big-endian. */
  catenaHop: 0xe1,
} as const;

export type ProxyCommand = "LOCAL" | "PROXY";

/**
 * The family and transport byte. AF_UNIX headers decode as UNSPEC: the spec lets a receiver that does
 * not implement a family fall back to UNSPEC, and Catena's hops only speak IP.
 */
export type ProxyProtocol = "UNSPEC" | "TCP4" | "UDP4" | "TCP6" | "UDP6";

export interface ProxyEndpoint {
  address: string;
  port: number;
}

export interface ProxyTlv {
  type: number;
  value: Uint8Array;
}

export interface ProxyHeader {
  command: ProxyCommand;
  protocol: ProxyProtocol;
  /** Present for TCP4/UDP4/TCP6/UDP6 with the PROXY command. */
  source?: ProxyEndpoint;
  destination?: ProxyEndpoint;
  /** Catena's chain TLV (0xE0). */
  chain?: string;
  /** Catena's hop TLV (0xE1). */
  hop?: number;
  /** Encode: append a CRC32C TLV. Decode: true when the header carried one and it verified. */
  checksum?: boolean;
  /** Every other TLV in wire order; on decode the values are views into the input, not copies. */
  tlvs?: ProxyTlv[];
}

export const PROXY_PARSE_ERROR = {
  badSignature: "bad-signature",
  badVersion: "bad-version",
  badCommand: "bad-command",
  badFamily: "bad-family",
  badLength: "bad-length",
  headerTooLong: "header-too-long",
  truncatedTlv: "truncated-tlv",
  badTlv: "bad-tlv",
  badChecksum: "bad-checksum",
  truncatedHeader: "truncated-header",
  finished: "finished",
  /** readProxyHeader only: no complete header within its timeout. */
  timeout: "timeout",
} as const;

export type ProxyParseErrorReason = (typeof PROXY_PARSE_ERROR)[keyof typeof PROXY_PARSE_ERROR];

export type ProxyParseResult =
  | { state: "need-more" }
  | { state: "done"; header: ProxyHeader; headerLength: number; rest: Buffer }
  | { state: "error"; reason: ProxyParseErrorReason; message: string };

// One frozen object: "need more" is the answer to most partial chunks and should cost nothing.
const NEED_MORE: ProxyParseResult = Object.freeze({ state: "need-more" });

function fail(reason: ProxyParseErrorReason, message: string): ProxyParseResult {
  return { state: "error", reason, message };
}

const FAMILY_UNSPEC = 0x0;
const FAMILY_INET = 0x1;
const FAMILY_INET6 = 0x2;
const FAMILY_UNIX = 0x3;
const ADDRESS_LENGTH = [0, 12, 36, 216] as const;
const ZERO4 = new Uint8Array(4);

/**
 * Decodes a header at the start of `buf`. Returns need-more while every byte seen so far is a valid
 * prefix (a bad signature is reported from its first wrong byte, not after 16 bytes).
 */
export function decodeProxyHeader(
  buf: Buffer,
  maxHeaderLength = PROXY_V2_MAX_HEADER_LENGTH,
): ProxyParseResult {
  const n = buf.length;
  const sigEnd = Math.min(n, 12);
  for (let i = 0; i < sigEnd; i++) {
    if (buf[i] !== PROXY_V2_SIGNATURE[i]) {
      return fail(PROXY_PARSE_ERROR.badSignature, `byte ${i} is not the PROXY v2 signature`);
    }
  }
  if (n < 13) return NEED_MORE;
  const verCmd = buf[12] as number;
  if (verCmd >> 4 !== 2) return fail(PROXY_PARSE_ERROR.badVersion, `version ${verCmd >> 4}, want 2`);
  const cmd = verCmd & 0x0f;
  if (cmd > 1) return fail(PROXY_PARSE_ERROR.badCommand, `command ${cmd} is neither LOCAL nor PROXY`);
  if (n < PROXY_V2_FIXED_LENGTH) return NEED_MORE;

  const len = buf.readUInt16BE(14);
  const total = PROXY_V2_FIXED_LENGTH + len;
  if (total > maxHeaderLength) {
    return fail(PROXY_PARSE_ERROR.headerTooLong, `header of ${total} bytes exceeds ${maxHeaderLength}`);
  }

  // LOCAL: the receiver uses the real endpoints and skips the block, family included (spec 2.2).
  if (cmd === 0) {
    if (n < total) return NEED_MORE;
    return {
      state: "done",
      header: { command: "LOCAL", protocol: "UNSPEC" },
      headerLength: total,
      rest: buf.subarray(total),
    };
  }

  const famByte = buf[13] as number;
  const family = famByte >> 4;
  const transport = famByte & 0x0f;
  if (family > FAMILY_UNIX) return fail(PROXY_PARSE_ERROR.badFamily, `address family ${family}`);
  if (transport > 2) return fail(PROXY_PARSE_ERROR.badFamily, `transport protocol ${transport}`);
  const addrLen = family === FAMILY_UNSPEC || transport === 0 ? 0 : (ADDRESS_LENGTH[family] as number);
  if (len < addrLen) {
    return fail(
      PROXY_PARSE_ERROR.badLength,
      `length ${len} is shorter than the ${addrLen}-byte address block`,
    );
  }
  if (n < total) return NEED_MORE;

  const rest = buf.subarray(total);
  // UNSPEC: address information is to be ignored, and without a known address block the TLVs cannot
  // be located either (HAProxy skips them the same way).
  if (addrLen === 0) {
    return { state: "done", header: { command: "PROXY", protocol: "UNSPEC" }, headerLength: total, rest };
  }

  const header: ProxyHeader = { command: "PROXY", protocol: "UNSPEC" };
  const a = PROXY_V2_FIXED_LENGTH;
  if (family === FAMILY_INET) {
    header.protocol = transport === 1 ? "TCP4" : "UDP4";
    header.source = { address: formatIpv4(readV4(buf, a)), port: buf.readUInt16BE(a + 8) };
    header.destination = { address: formatIpv4(readV4(buf, a + 4)), port: buf.readUInt16BE(a + 10) };
  } else if (family === FAMILY_INET6) {
    header.protocol = transport === 1 ? "TCP6" : "UDP6";
    header.source = { address: formatIpv6(buf, a), port: buf.readUInt16BE(a + 32) };
    header.destination = { address: formatIpv6(buf, a + 16), port: buf.readUInt16BE(a + 34) };
  }

  let p = a + addrLen;
  while (p < total) {
    if (total - p < 3)
      return fail(PROXY_PARSE_ERROR.truncatedTlv, `TLV at offset ${p} has no room for its header`);
    const type = buf[p] as number;
    const vlen = buf.readUInt16BE(p + 1);
    const vs = p + 3;
    const ve = vs + vlen;
    if (ve > total) {
      return fail(
        PROXY_PARSE_ERROR.truncatedTlv,
        `TLV 0x${type.toString(16)} at offset ${p} runs past the header`,
      );
    }
    switch (type) {
      case PP2_TYPE.crc32c: {
        if (vlen !== 4 || header.checksum !== undefined) {
          return fail(PROXY_PARSE_ERROR.badTlv, "CRC32C TLV must appear once with 4 bytes");
        }
        let c = crc32c(buf, 0, vs);
        c = crc32c(ZERO4, 0, 4, c);
        c = crc32c(buf, ve, total, c);
        if (c !== buf.readUInt32BE(vs))
          return fail(PROXY_PARSE_ERROR.badChecksum, "CRC32C does not match the header");
        header.checksum = true;
        break;
      }
      case PP2_TYPE.catenaChain:
        if (vlen === 0 || header.chain !== undefined) {
          return fail(PROXY_PARSE_ERROR.badTlv, "chain TLV must appear once and not be empty");
        }
        header.chain = buf.toString("utf8", vs, ve);
        break;
      case PP2_TYPE.catenaHop:
        if (vlen !== 2 || header.hop !== undefined) {
          return fail(PROXY_PARSE_ERROR.badTlv, "hop TLV must appear once with 2 bytes");
        }
        header.hop = buf.readUInt16BE(vs);
        break;
      default:
        if (header.tlvs === undefined) header.tlvs = [];
        header.tlvs.push({ type, value: buf.subarray(vs, ve) });
    }
    p = ve;
  }
  return { state: "done", header, headerLength: total, rest };
}

/**
 * Incremental decoder for one connection: feed each chunk read from the socket until it answers done
 * or error. When the header arrives whole in the first chunk nothing is copied; otherwise the bytes
 * are gathered in one buffer of at most maxHeaderLength.
 */
export class ProxyHeaderParser {
  private gathered: Buffer | undefined;
  private have = 0;
  private finished = false;
  private readonly max: number;

  constructor(options: { maxHeaderLength?: number } = {}) {
    this.max = options.maxHeaderLength ?? PROXY_V2_MAX_HEADER_LENGTH;
  }

  feed(chunk: Buffer): ProxyParseResult {
    if (this.finished) return fail(PROXY_PARSE_ERROR.finished, "the parser already returned done or error");
    if (this.have === 0) {
      const r = decodeProxyHeader(chunk, this.max);
      if (r.state !== "need-more") {
        this.finished = true;
        return r;
      }
      if (chunk.length === 0) return r;
      // need-more implies chunk.length < the header length <= max, so it fits.
      this.gathered = Buffer.allocUnsafe(this.max);
      chunk.copy(this.gathered, 0);
      this.have = chunk.length;
      return r;
    }
    const g = this.gathered as Buffer;
    const take = Math.min(chunk.length, this.max - this.have);
    chunk.copy(g, this.have, 0, take);
    this.have += take;
    const r = decodeProxyHeader(g.subarray(0, this.have), this.max);
    if (r.state === "need-more") return r;
    this.finished = true;
    if (r.state === "error") return r;
    // The header ends inside this chunk: what follows is the first payload, still unread.
    const fromChunk = r.headerLength - (this.have - take);
    return { state: "done", header: r.header, headerLength: r.headerLength, rest: chunk.subarray(fromChunk) };
  }

  /** The socket ended: a partial header is an error (spec: reject partial protocol headers). */
  end(): ProxyParseResult {
    if (this.finished) return fail(PROXY_PARSE_ERROR.finished, "the parser already returned done or error");
    this.finished = true;
    return fail(PROXY_PARSE_ERROR.truncatedHeader, `connection ended after ${this.have} header bytes`);
  }
}

function invalidHeader(message: string): SdkError {
  return new SdkError(SDK_ERROR.proxyHeaderInvalid, message);
}

function carriesAddresses(h: ProxyHeader): boolean {
  return h.command === "PROXY" && h.protocol !== "UNSPEC";
}

/** Bytes encodeProxyHeader will write for h. LOCAL and UNSPEC headers carry no addresses and no TLVs. */
export function proxyHeaderLength(h: ProxyHeader): number {
  if (!carriesAddresses(h)) return PROXY_V2_FIXED_LENGTH;
  let n = PROXY_V2_FIXED_LENGTH + (h.protocol === "TCP4" || h.protocol === "UDP4" ? 12 : 36);
  if (h.chain !== undefined) n += 3 + Buffer.byteLength(h.chain, "utf8");
  if (h.hop !== undefined) n += 5;
  if (h.tlvs) for (const t of h.tlvs) n += 3 + t.value.length;
  if (h.checksum) n += 7;
  return n;
}

function writeEndpoints(h: ProxyHeader, out: Buffer, a: number, v6: boolean): void {
  const src = h.source;
  const dst = h.destination;
  if (!src || !dst) throw invalidHeader(`${h.protocol} needs source and destination`);
  for (const [ep, what] of [
    [src, "source"],
    [dst, "destination"],
  ] as const) {
    if (!Number.isInteger(ep.port) || ep.port < 0 || ep.port > 65535)
      throw invalidHeader(`${what} port ${ep.port}`);
  }
  if (v6) {
    if (!parseIpv6Into(src.address, out, a)) throw invalidHeader(`source ${src.address} is not IPv6`);
    if (!parseIpv6Into(dst.address, out, a + 16))
      throw invalidHeader(`destination ${dst.address} is not IPv6`);
    out.writeUInt16BE(src.port, a + 32);
    out.writeUInt16BE(dst.port, a + 34);
  } else {
    const s = parseIpv4(src.address);
    const d = parseIpv4(dst.address);
    if (s < 0) throw invalidHeader(`source ${src.address} is not IPv4`);
    if (d < 0) throw invalidHeader(`destination ${dst.address} is not IPv4`);
    out.writeUInt32BE(s, a);
    out.writeUInt32BE(d, a + 4);
    out.writeUInt16BE(src.port, a + 8);
    out.writeUInt16BE(dst.port, a + 10);
  }
}

/**
 * Writes h at out[offset..] and returns the number of bytes written. Throws SdkError
 * (CATENA_SDK_PROXY_HEADER_INVALID) for an address that does not match the protocol, a bad port, or
 * a header longer than PROXY_V2_MAX_HEADER_LENGTH; out must have proxyHeaderLength(h) bytes free.
 * Do not hand a region of a reused buffer to socket.write: the socket may still hold it.
 */
export function encodeProxyHeader(h: ProxyHeader, out: Buffer, offset = 0): number {
  const total = proxyHeaderLength(h);
  if (total > PROXY_V2_MAX_HEADER_LENGTH) throw invalidHeader(`header of ${total} bytes exceeds the maximum`);
  if (out.length - offset < total) throw invalidHeader(`${out.length - offset} bytes free, ${total} needed`);
  for (let i = 0; i < 12; i++) out[offset + i] = PROXY_V2_SIGNATURE[i] as number;
  if (!carriesAddresses(h)) {
    out[offset + 12] = h.command === "LOCAL" ? 0x20 : 0x21;
    out[offset + 13] = 0x00;
    out.writeUInt16BE(0, offset + 14);
    return total;
  }
  const v6 = h.protocol === "TCP6" || h.protocol === "UDP6";
  const tcp = h.protocol === "TCP4" || h.protocol === "TCP6";
  out[offset + 12] = 0x21;
  out[offset + 13] = ((v6 ? FAMILY_INET6 : FAMILY_INET) << 4) | (tcp ? 1 : 2);
  out.writeUInt16BE(total - PROXY_V2_FIXED_LENGTH, offset + 14);
  let p = offset + PROXY_V2_FIXED_LENGTH;
  writeEndpoints(h, out, p, v6);
  p += v6 ? 36 : 12;
  if (h.chain !== undefined) {
    if (h.chain === "") throw invalidHeader("chain must not be empty");
    out[p] = PP2_TYPE.catenaChain;
    const written = out.write(h.chain, p + 3, "utf8");
    out.writeUInt16BE(written, p + 1);
    p += 3 + written;
  }
  if (h.hop !== undefined) {
    if (!Number.isInteger(h.hop) || h.hop < 0 || h.hop > 0xffff) throw invalidHeader(`hop ${h.hop}`);
    out[p] = PP2_TYPE.catenaHop;
    out.writeUInt16BE(2, p + 1);
    out.writeUInt16BE(h.hop, p + 3);
    p += 5;
  }
  if (h.tlvs) {
    for (const t of h.tlvs) {
      if (t.type === PP2_TYPE.crc32c || t.type === PP2_TYPE.catenaChain || t.type === PP2_TYPE.catenaHop) {
        throw invalidHeader(`TLV 0x${t.type.toString(16)} is written from its own field`);
      }
      out[p] = t.type;
      out.writeUInt16BE(t.value.length, p + 1);
      out.set(t.value, p + 3);
      p += 3 + t.value.length;
    }
  }
  if (h.checksum) {
    // Checksum last, over the whole header with its own value zeroed (spec 2.2.3).
    out[p] = PP2_TYPE.crc32c;
    out.writeUInt16BE(4, p + 1);
    out.writeUInt32BE(0, p + 3);
    out.writeUInt32BE(crc32c(out, offset, offset + total), p + 3);
    p += 7;
  }
  return p - offset;
}

/** encodeProxyHeader into a new Buffer of exactly the header's length: safe to hand to socket.write. */
export function proxyHeaderBuffer(h: ProxyHeader): Buffer {
  const out = Buffer.allocUnsafe(proxyHeaderLength(h));
  encodeProxyHeader(h, out, 0);
  return out;
}

function unmappedText(address: string): string {
  return address.startsWith("::ffff:") && address.indexOf(".") > 0 ? address.slice(7) : address;
}

/**
 * A TCP header for a connection between source and destination as Node reports them (for example
 * socket.remoteAddress/remotePort and localAddress/localPort): TCP4 when both are IPv4 or
 * IPv4-mapped, else TCP6 with any IPv4 side written as IPv4-mapped IPv6.
 */
export function tcpProxyHeader(
  source: ProxyEndpoint,
  destination: ProxyEndpoint,
  extra: Pick<ProxyHeader, "chain" | "hop" | "tlvs" | "checksum"> = {},
): ProxyHeader {
  const s = unmappedText(source.address);
  const d = unmappedText(destination.address);
  const v4 = parseIpv4(s) >= 0 && parseIpv4(d) >= 0;
  const as6 = (a: string) => (parseIpv4(a) >= 0 ? `::ffff:${a}` : a);
  return {
    command: "PROXY",
    protocol: v4 ? "TCP4" : "TCP6",
    source: { address: v4 ? s : as6(s), port: source.port },
    destination: { address: v4 ? d : as6(d), port: destination.port },
    ...extra,
  };
}
