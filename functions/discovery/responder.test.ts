import * as dnsPacket from "dns-packet";
import { describe, expect, it } from "vitest";
import { Responder } from "./responder.js";
import { Zone } from "./zone.js";

function zone(): Zone {
  const z = new Zone({ zone: "catena.", ttlSeconds: 7, nsAddress: "127.0.0.1" });
  z.setService("web", [
    { address: "127.0.0.1", port: 9001, weight: 1, portName: "http" },
    { address: "127.0.0.2", port: 9002, weight: 3, portName: "http" },
    { address: "fd00::1", port: 9003, weight: 1, portName: "http" },
  ]);
  z.setService(
    "big",
    Array.from({ length: 100 }, (_, i) => ({
      address: `10.0.0.${i + 1}`,
      port: 80,
      weight: 1,
      portName: "http",
    })),
  );
  z.setService("empty", []);
  return z;
}

function query(
  name: string,
  type: dnsPacket.RecordType,
  options: { edns?: number; id?: number } = {},
): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: options.id ?? 4242,
    flags: dnsPacket.RECURSION_DESIRED,
    questions: [{ type, name, class: "IN" }],
    ...(options.edns
      ? {
          additionals: [
            {
              type: "OPT",
              name: ".",
              udpPayloadSize: options.edns,
              extendedRcode: 0,
              ednsVersion: 0,
              flags: 0,
              flag_do: false,
              options: [],
            },
          ],
        }
      : {}),
  });
}

function ask(r: Responder, packet: Buffer, transport: "udp" | "tcp" = "udp") {
  const out = r.respond(packet, transport);
  if (!(out instanceof Buffer)) throw new Error("expected a synchronous answer");
  return dnsPacket.decode(out);
}

const rcode = (p: dnsPacket.DecodedPacket) => (p.flags ?? 0) & 0xf;
/** Any record's data and TTL (OPT has neither). */
const rec = (a: dnsPacket.Answer) => a as { name: string; type: string; ttl?: number; data?: unknown };
const data = (p: dnsPacket.DecodedPacket) => (p.answers ?? []).map((a) => rec(a).data);

describe("discovery responder", () => {
  const r = new Responder(zone());

  it("A for <service>.<zone>: every healthy IPv4 endpoint, authoritative, the configured TTL", () => {
    const p = ask(r, query("web.catena", "A"));
    expect(p.id).toBe(4242);
    expect(p.flag_aa).toBe(true);
    expect(p.flag_rd).toBe(true);
    expect(rcode(p)).toBe(0);
    expect((data(p) as string[]).sort()).toEqual(["127.0.0.1", "127.0.0.2"]);
    expect(p.answers?.every((a) => rec(a).ttl === 7 && a.name === "web.catena")).toBe(true);
  });

  it("AAAA answers the IPv6 endpoints", () => {
    expect(data(ask(r, query("web.catena", "AAAA")))).toEqual(["fd00::1"]);
  });

  it("the question's case comes back as asked (0x20), names compress onto it", () => {
    const p = ask(r, query("WeB.CaTeNa", "A"));
    expect(p.questions?.[0]?.name).toBe("WeB.CaTeNa");
    expect(p.answers?.[0]?.name).toBe("WeB.CaTeNa");
  });

  it("SRV _<port>._tcp with weights and ports, the targets' addresses as additionals", () => {
    const p = ask(r, query("_http._tcp.web.catena", "SRV"));
    const srv = (p.answers ?? []).map((a) => rec(a).data as dnsPacket.SrvData);
    expect(srv.map((s) => [s.port, s.weight, s.target]).sort()).toEqual([
      [9001, 1, "127-0-0-1.web.catena"],
      [9002, 3, "127-0-0-2.web.catena"],
      [9003, 1, "fd000000000000000000000000000001.web.catena"],
    ]);
    expect((p.additionals ?? []).map((a) => [a.name, rec(a).data])).toEqual([
      ["127-0-0-1.web.catena", "127.0.0.1"],
      ["127-0-0-2.web.catena", "127.0.0.2"],
      ["fd000000000000000000000000000001.web.catena", "fd00::1"],
    ]);
    expect(data(ask(r, query("127-0-0-2.web.catena", "A")))).toEqual(["127.0.0.2"]);
  });

  it("a missing name is NXDOMAIN, with the SOA (minimum = TTL) for negative caching", () => {
    const p = ask(r, query("nope.catena", "A"));
    expect(rcode(p)).toBe(3);
    expect(p.flag_aa).toBe(true);
    const soa = p.authorities?.[0];
    expect(soa?.type).toBe("SOA");
    expect(soa?.name).toBe("catena");
    expect((soa && (rec(soa).data as dnsPacket.SoaData))?.minimum).toBe(7);
  });

  it("an existing name without the asked type is NODATA: NOERROR, no answer, the SOA", () => {
    for (const [name, type] of [
      ["web.catena", "TXT"],
      ["empty.catena", "A"],
      ["_tcp.web.catena", "SRV"],
    ] as const) {
      const p = ask(r, query(name, type));
      expect(rcode(p), name).toBe(0);
      expect(p.answers, name).toEqual([]);
      expect(p.authorities?.[0]?.type, name).toBe("SOA");
    }
  });

  it("the apex answers SOA and NS; its serial moves with every change", () => {
    const z = zone();
    const zr = new Responder(z);
    const serial = () => (data(ask(zr, query("catena", "SOA")))[0] as dnsPacket.SoaData).serial;
    const before = serial() as number;
    z.setService("web", [{ address: "127.0.0.9", port: 1, weight: 1 }]);
    expect(serial()).toBe(before + 1);
    expect(data(ask(zr, query("catena", "NS")))).toEqual(["ns.catena"]);
    expect(data(ask(zr, query("ns.catena", "A")))).toEqual(["127.0.0.1"]);
  });

  it("answers rotate: each endpoint comes first in turn", () => {
    const firsts = new Set<string>();
    for (let i = 0; i < 4; i++) firsts.add((data(ask(r, query("web.catena", "A"))) as string[])[0] as string);
    expect(firsts).toEqual(new Set(["127.0.0.1", "127.0.0.2"]));
  });

  it("over UDP an answer larger than 512 bytes (or the EDNS size) is TC with no records; TCP has them all", () => {
    const plain = ask(r, query("big.catena", "A"));
    expect(plain.flag_tc).toBe(true);
    expect(plain.answers).toEqual([]);
    const edns = ask(r, query("big.catena", "A", { edns: 1232 }));
    expect(edns.flag_tc).toBe(true);
    const tcp = ask(r, query("big.catena", "A"), "tcp");
    expect(tcp.flag_tc).toBe(false);
    expect(tcp.answers).toHaveLength(100);
    // 2 endpoints fit in 512 bytes either way.
    expect(ask(r, query("web.catena", "A")).flag_tc).toBe(false);
  });

  it("EDNS0: the answer carries an OPT with our payload size; version > 0 is BADVERS", () => {
    const p = ask(r, query("web.catena", "A", { edns: 4096 }));
    const opt = p.additionals?.find((a) => a.type === "OPT") as dnsPacket.OptAnswer | undefined;
    expect(opt?.udpPayloadSize).toBe(1232);
    const q = query("web.catena", "A", { edns: 1232 });
    q[q.length - 5] = 1; // the OPT TTL's version byte
    const bad = ask(r, q);
    const badOpt = bad.additionals?.find((a) => a.type === "OPT") as dnsPacket.OptAnswer | undefined;
    expect(badOpt?.extendedRcode).toBe(1); // BADVERS = 16 = extended 1, rcode 0
  });

  it("names outside the zone are REFUSED without an upstream; AXFR too", () => {
    expect(rcode(ask(r, query("example.com", "A")))).toBe(5);
    expect(rcode(ask(r, query("xcatena", "A")))).toBe(5);
    expect(rcode(ask(r, query("catena", "AXFR")))).toBe(5);
  });

  it("malformed questions are FORMERR, other opcodes NOTIMP, responses and runts are dropped", () => {
    const q = query("web.catena", "A");
    const twoQuestions = Buffer.from(q);
    twoQuestions.writeUInt16BE(2, 4);
    expect(rcode(ask(r, twoQuestions))).toBe(1);
    const cut = q.subarray(0, q.length - 3);
    expect(rcode(ask(r, cut))).toBe(1);
    const pointer = Buffer.from(q);
    pointer[12] = 0xc0;
    expect(rcode(ask(r, pointer))).toBe(1);
    const notify = Buffer.from(q);
    notify[2] = ((notify[2] as number) & 0x87) | (4 << 3);
    expect(rcode(ask(r, notify))).toBe(4);
    const response = Buffer.from(q);
    response[2] = (response[2] as number) | 0x80;
    expect(r.respond(response, "udp")).toBeUndefined();
    expect(r.respond(Buffer.alloc(5), "udp")).toBeUndefined();
  });

  it("removing a service removes its names", () => {
    const z = zone();
    const zr = new Responder(z);
    z.setService("web", undefined);
    expect(rcode(ask(zr, query("web.catena", "A")))).toBe(3);
    expect(rcode(ask(zr, query("_http._tcp.web.catena", "SRV")))).toBe(3);
    expect(rcode(ask(zr, query("127-0-0-1.web.catena", "A")))).toBe(3);
  });
});
