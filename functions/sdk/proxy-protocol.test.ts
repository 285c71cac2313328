import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { crc32c } from "./crc32c.js";
import { parseIp } from "./ip-address.js";
import {
  decodeProxyHeader,
  encodeProxyHeader,
  PP2_TYPE,
  PROXY_PARSE_ERROR,
  type ProxyHeader,
  ProxyHeaderParser,
  type ProxyParseErrorReason,
  proxyHeaderBuffer,
  proxyHeaderLength,
} from "./proxy-protocol.js";

const SIG = "0d0a0d0a000d0a515549540a";
const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ""), "hex");

function done(buf: Buffer) {
  const r = decodeProxyHeader(buf);
  if (r.state !== "done") throw new Error(`expected done, got ${JSON.stringify(r)}`);
  return r;
}

describe("crc32c", () => {
  it("has the standard check value", () => {
    expect(crc32c(Buffer.from("123456789"))).toBe(0xe3069283);
  });

  it("continues across ranges", () => {
    const b = Buffer.from("hello, proxy protocol");
    expect(crc32c(b, 7, b.length, crc32c(b, 0, 7))).toBe(crc32c(b));
  });
});

describe("PROXY v2 interop vectors", () => {
  // HAProxy's "send-proxy-v2" output captured in front of an HTTP request (TCP4, 16 + 12 bytes).
  it("decodes an HAProxy TCP4 header and leaves the request as rest", () => {
    const wire = Buffer.concat([
      hex(`${SIG} 21 11 000c ac130001 ac130003 a652 0050`),
      Buffer.from("GET / HTTP/1.1\r\n"),
    ]);
    const r = done(wire);
    expect(r.headerLength).toBe(28);
    expect(r.header).toEqual({
      command: "PROXY",
      protocol: "TCP4",
      source: { address: "172.19.0.1", port: 42578 },
      destination: { address: "172.19.0.3", port: 80 },
    });
    expect(r.rest.toString()).toBe("GET / HTTP/1.1\r\n");
    // Encoding the decoded header gives the same bytes back.
    expect(proxyHeaderBuffer(r.header)).toEqual(wire.subarray(0, 28));
  });

  it("decodes HAProxy's LOCAL health-check header (family ignored)", () => {
    const r = done(hex(`${SIG} 20 00 0000`));
    expect(r.header).toEqual({ command: "LOCAL", protocol: "UNSPEC" });
    expect(r.headerLength).toBe(16);
    // A LOCAL header's family and block are skipped whatever they say.
    const odd = done(hex(`${SIG} 20 ff 0004 deadbeef`));
    expect(odd.header.command).toBe("LOCAL");
    expect(odd.headerLength).toBe(20);
  });

  it("decodes TCP6 with ALPN, AUTHORITY and a NOOP pad", () => {
    const wire = hex(`${SIG} 21 21 0048
      20010db8000000000000000000000001 20010db8000000000000000000000002 c350 01bb
      01 0002 6832
      02 000b 6578616d706c652e636f6d
      04 0003 000000
      e0 0003 776562
      e1 0002 0002`);
    const r = done(wire);
    expect(r.header.protocol).toBe("TCP6");
    expect(r.header.source).toEqual({ address: "2001:db8::1", port: 50000 });
    expect(r.header.destination).toEqual({ address: "2001:db8::2", port: 443 });
    expect(r.header.chain).toBe("web");
    expect(r.header.hop).toBe(2);
    expect(r.header.tlvs?.map((t) => [t.type, Buffer.from(t.value).toString("hex")])).toEqual([
      [PP2_TYPE.alpn, "6832"],
      [PP2_TYPE.authority, Buffer.from("example.com").toString("hex")],
      [PP2_TYPE.noop, "000000"],
    ]);
    expect(r.rest.length).toBe(0);
  });

  it("verifies a CRC32C TLV computed over the header with the field zeroed", () => {
    const body = hex(`${SIG} 21 11 0013 7f000001 7f000002 3039 1f90 03 0004 00000000`);
    body.writeUInt32BE(crc32c(body), body.length - 4);
    expect(done(body).header.checksum).toBe(true);
  });

  it("decodes UDP4 and UDP6 transports", () => {
    expect(done(hex(`${SIG} 21 12 000c 0a000001 0a000002 0035 0035`)).header.protocol).toBe("UDP4");
    expect(
      done(hex(`${SIG} 21 22 0024 ${"00".repeat(15)}01 ${"00".repeat(15)}02 0035 0035`)).header.protocol,
    ).toBe("UDP6");
  });

  it("treats AF_UNSPEC under PROXY as no addresses and skips its block", () => {
    const r = done(hex(`${SIG} 21 00 0003 010203 ff`));
    expect(r.header).toEqual({ command: "PROXY", protocol: "UNSPEC" });
    expect(r.headerLength).toBe(19);
    expect([...r.rest]).toEqual([0xff]);
  });

  it("falls back to UNSPEC for AF_UNIX and still reads TLVs after the 216-byte block", () => {
    const r = done(hex(`${SIG} 21 31 00dd ${"00".repeat(216)} e0 0002 6869`));
    expect(r.header.protocol).toBe("UNSPEC");
    expect(r.header.source).toBeUndefined();
    expect(r.header.chain).toBe("hi");
  });
});

interface MalformedCase {
  name: string;
  wire: string;
  reason: ProxyParseErrorReason;
}

const tcp4 = (len: string, tail = "") => `${SIG} 21 11 ${len} 7f000001 7f000002 3039 1f90 ${tail}`;

const malformed: MalformedCase[] = [
  {
    name: "plain HTTP instead of a header",
    wire: Buffer.from("GET / HTTP/1.1\r\n\r\n").toString("hex"),
    reason: "bad-signature",
  },
  {
    name: "PROXY v1 text",
    wire: Buffer.from("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\r\n").toString("hex"),
    reason: "bad-signature",
  },
  { name: "last signature byte wrong", wire: `0d0a0d0a000d0a515549540b 21 11 0000`, reason: "bad-signature" },
  { name: "version 1 in the binary form", wire: `${SIG} 11 11 000c`, reason: "bad-version" },
  { name: "version 3", wire: `${SIG} 31 11 000c`, reason: "bad-version" },
  { name: "command 2", wire: `${SIG} 22 11 000c`, reason: "bad-command" },
  { name: "command 15", wire: `${SIG} 2f 11 000c`, reason: "bad-command" },
  { name: "address family 4", wire: `${SIG} 21 41 000c ${"00".repeat(12)}`, reason: "bad-family" },
  { name: "transport protocol 3", wire: `${SIG} 21 13 000c ${"00".repeat(12)}`, reason: "bad-family" },
  {
    name: "TCP4 length shorter than its addresses",
    wire: `${SIG} 21 11 000b ${"00".repeat(11)}`,
    reason: "bad-length",
  },
  {
    name: "TCP6 length shorter than its addresses",
    wire: `${SIG} 21 21 0023 ${"00".repeat(35)}`,
    reason: "bad-length",
  },
  { name: "UNIX length shorter than its addresses", wire: `${SIG} 21 31 00d7`, reason: "bad-length" },
  { name: "header longer than 1 KiB", wire: `${SIG} 21 11 03f1`, reason: "header-too-long" },
  { name: "maximum declared length", wire: `${SIG} 21 11 ffff`, reason: "header-too-long" },
  { name: "TLV header cut after 2 bytes", wire: tcp4("000e", "01 00"), reason: "truncated-tlv" },
  { name: "TLV header cut after 1 byte", wire: tcp4("000d", "01"), reason: "truncated-tlv" },
  { name: "TLV value past the header", wire: tcp4("0011", "02 0005 6162"), reason: "truncated-tlv" },
  { name: "second TLV past the header", wire: tcp4("0014", "04 0000 02 0005 6162"), reason: "truncated-tlv" },
  { name: "CRC32C with 3 bytes", wire: tcp4("0012", "03 0003 000000"), reason: "bad-tlv" },
  { name: "CRC32C that does not match", wire: tcp4("0013", "03 0004 12345678"), reason: "bad-checksum" },
  { name: "empty chain TLV", wire: tcp4("000f", "e0 0000"), reason: "bad-tlv" },
  { name: "chain TLV twice", wire: tcp4("0014", "e0 0001 61 e0 0001 62"), reason: "bad-tlv" },
  { name: "hop TLV of 1 byte", wire: tcp4("0010", "e1 0001 01"), reason: "bad-tlv" },
  { name: "hop TLV of 4 bytes", wire: tcp4("0013", "e1 0004 00000001"), reason: "bad-tlv" },
];

describe("PROXY v2 malformed headers", () => {
  it.each(malformed)("$name → $reason", ({ wire, reason }) => {
    const r = decodeProxyHeader(hex(wire));
    expect(r.state).toBe("error");
    if (r.state === "error") expect(r.reason).toBe(reason);
    // The incremental parser reaches the same verdict, byte by byte, without throwing.
    const p = new ProxyHeaderParser();
    const bytes = hex(wire);
    let last = p.feed(bytes.subarray(0, 1));
    for (let i = 1; i < bytes.length && last.state === "need-more"; i++)
      last = p.feed(bytes.subarray(i, i + 1));
    expect(last.state).toBe("error");
    if (last.state === "error") expect(last.reason).toBe(reason);
  });

  it("reports a bad signature from the first wrong byte, before 16 bytes arrive", () => {
    const r = new ProxyHeaderParser().feed(Buffer.from("GE"));
    expect(r).toMatchObject({ state: "error", reason: PROXY_PARSE_ERROR.badSignature });
  });

  it("refuses an over-long header from its fixed part alone, buffering nothing more", () => {
    const p = new ProxyHeaderParser();
    expect(p.feed(hex(`${SIG} 21 11`)).state).toBe("need-more");
    expect(p.feed(hex("0400"))).toMatchObject({ state: "error", reason: "header-too-long" });
  });

  it("honours a smaller configured maximum", () => {
    const r = new ProxyHeaderParser({ maxHeaderLength: 27 }).feed(hex(tcp4("000c")));
    expect(r).toMatchObject({ state: "error", reason: "header-too-long" });
  });

  it("treats a connection that ends inside the header as truncated", () => {
    const p = new ProxyHeaderParser();
    expect(p.feed(hex(`${SIG} 21 11 000c 7f00`)).state).toBe("need-more");
    expect(p.end()).toMatchObject({ state: "error", reason: "truncated-header" });
  });

  it("answers finished after done", () => {
    const p = new ProxyHeaderParser();
    expect(p.feed(hex(tcp4("000c"))).state).toBe("done");
    expect(p.feed(Buffer.from("x"))).toMatchObject({ state: "error", reason: "finished" });
    expect(p.end()).toMatchObject({ state: "error", reason: "finished" });
  });
});

describe("ProxyHeaderParser on split chunks", () => {
  const header: ProxyHeader = {
    command: "PROXY",
    protocol: "TCP6",
    source: { address: "fd00::7", port: 40000 },
    destination: { address: "fd00::9", port: 8080 },
    chain: "web-edge",
    hop: 1,
    checksum: true,
  };
  const wire = Buffer.concat([proxyHeaderBuffer(header), Buffer.from("payload")]);
  const headerLength = proxyHeaderLength(header);

  it("gives the same result for every split point, with rest from the last chunk", () => {
    for (let cut = 0; cut <= wire.length; cut++) {
      const p = new ProxyHeaderParser();
      const first = p.feed(wire.subarray(0, cut));
      const r = first.state === "done" ? first : p.feed(wire.subarray(cut));
      expect(r.state, `cut at ${cut}`).toBe("done");
      if (r.state !== "done") continue;
      expect(r.headerLength).toBe(headerLength);
      expect(r.header).toEqual(header);
      // Bytes after the chunk that completed the header are the caller's to read as payload.
      const after = first.state === "done" ? wire.subarray(cut) : Buffer.alloc(0);
      expect(Buffer.concat([r.rest, after]).toString()).toBe("payload");
    }
  });

  it("does not copy when the header arrives whole", () => {
    const r = new ProxyHeaderParser().feed(wire);
    expect(r.state).toBe("done");
    if (r.state === "done") expect(r.rest.buffer).toBe(wire.buffer);
  });

  it("works byte by byte", () => {
    const p = new ProxyHeaderParser();
    let r = p.feed(wire.subarray(0, 1));
    let i = 1;
    for (; r.state === "need-more"; i++) r = p.feed(wire.subarray(i, i + 1));
    expect(i).toBe(headerLength);
    expect(r.state).toBe("done");
  });
});

describe("encodeProxyHeader", () => {
  it("writes into a caller's buffer at an offset and returns the length", () => {
    const out = Buffer.alloc(100, 0xaa);
    const n = encodeProxyHeader(
      {
        command: "PROXY",
        protocol: "TCP4",
        source: { address: "1.2.3.4", port: 1 },
        destination: { address: "5.6.7.8", port: 2 },
      },
      out,
      10,
    );
    expect(n).toBe(28);
    expect(out[9]).toBe(0xaa);
    expect(out[38]).toBe(0xaa);
    expect(done(out.subarray(10, 38)).header.source).toEqual({ address: "1.2.3.4", port: 1 });
  });

  it("writes LOCAL and UNSPEC as the bare 16 bytes", () => {
    expect(proxyHeaderBuffer({ command: "LOCAL", protocol: "TCP4" }).toString("hex")).toBe(`${SIG}20000000`);
    expect(proxyHeaderBuffer({ command: "PROXY", protocol: "UNSPEC", chain: "x" }).toString("hex")).toBe(
      `${SIG}21000000`,
    );
  });

  it.each([
    { name: "IPv6 address in TCP4", h: { source: { address: "::1", port: 1 } }, msg: /not IPv4/ },
    { name: "IPv4 address in TCP6", h: { protocol: "TCP6" as const }, msg: /not IPv6/ },
    { name: "port out of range", h: { source: { address: "1.1.1.1", port: 70000 } }, msg: /port/ },
    { name: "missing destination", h: { destination: undefined }, msg: /needs source and destination/ },
    { name: "hop out of range", h: { hop: 65536 }, msg: /hop/ },
    {
      name: "reserved TLV in tlvs",
      h: { tlvs: [{ type: 0xe0, value: new Uint8Array(1) }] },
      msg: /own field/,
    },
    { name: "over 1 KiB", h: { tlvs: [{ type: 0xe5, value: new Uint8Array(1000) }] }, msg: /exceeds/ },
  ])("refuses $name with a coded error", ({ h, msg }) => {
    const base: ProxyHeader = {
      command: "PROXY",
      protocol: "TCP4",
      source: { address: "1.1.1.1", port: 1 },
      destination: { address: "2.2.2.2", port: 2 },
    };
    const run = () => proxyHeaderBuffer({ ...base, ...h });
    expect(run).toThrow(msg);
    try {
      run();
    } catch (e) {
      expect((e as { code?: string }).code).toBe("CATENA_SDK_PROXY_HEADER_INVALID");
    }
  });

  it("round-trips random headers", () => {
    const endpoint4 = fc.record({ address: fc.ipV4(), port: fc.integer({ min: 0, max: 65535 }) });
    const endpoint6 = fc.record({ address: fc.ipV6(), port: fc.integer({ min: 0, max: 65535 }) });
    const tlv = fc.record({
      type: fc.integer({ min: 0, max: 255 }).filter((t) => t !== 0x03 && t !== 0xe0 && t !== 0xe1),
      value: fc.uint8Array({ maxLength: 40 }),
    });
    const common = {
      chain: fc.option(fc.string({ minLength: 1, maxLength: 60 }), { nil: undefined }),
      hop: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
      checksum: fc.option(fc.constant(true), { nil: undefined }),
      tlvs: fc.option(fc.array(tlv, { minLength: 1, maxLength: 5 }), { nil: undefined }),
    };
    const h4 = fc.record({
      protocol: fc.constantFrom("TCP4" as const, "UDP4" as const),
      source: endpoint4,
      destination: endpoint4,
      ...common,
    });
    const h6 = fc.record({
      protocol: fc.constantFrom("TCP6" as const, "UDP6" as const),
      source: endpoint6,
      destination: endpoint6,
      ...common,
    });
    fc.assert(
      fc.property(fc.oneof(h4, h6), (partial) => {
        const h: ProxyHeader = { command: "PROXY", ...partial };
        for (const k of Object.keys(h) as (keyof ProxyHeader)[]) if (h[k] === undefined) delete h[k];
        const wire = proxyHeaderBuffer(h);
        expect(wire.length).toBe(proxyHeaderLength(h));
        const r = done(wire);
        expect(r.headerLength).toBe(wire.length);
        const norm = (ep: { address: string; port: number }) => {
          const ip = parseIp(ep.address);
          return { ip: ip?.family === 4 ? ip.v4 : Buffer.from(ip!.bytes).toString("hex"), port: ep.port };
        };
        expect(norm(r.header.source!)).toEqual(norm(h.source!));
        expect(norm(r.header.destination!)).toEqual(norm(h.destination!));
        expect(r.header.chain).toBe(h.chain);
        expect(r.header.hop).toBe(h.hop);
        expect(r.header.checksum).toBe(h.checksum);
        expect(r.header.tlvs?.map((t) => ({ type: t.type, value: Uint8Array.from(t.value) }))).toEqual(
          h.tlvs,
        );
        expect(r.header.protocol).toBe(h.protocol);
      }),
      { numRuns: 500 },
    );
  });
});
