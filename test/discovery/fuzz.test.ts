// Bad input for the DNS server: 10,000 random and mutated packets. No packet may throw or stop the
// server; every answer must be a well-formed DNS message for the query's id; malformed questions get
// FORMERR; and the server still answers correctly afterwards, over the network.
import { createSocket } from "node:dgram";
import * as dnsPacket from "dns-packet";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DnsServer } from "../../functions/discovery/dns-server.js";
import { Responder } from "../../functions/discovery/responder.js";
import { Zone } from "../../functions/discovery/zone.js";

function zone(): Zone {
  const z = new Zone({ zone: "catena.", ttlSeconds: 5 });
  z.setService("web", [
    { address: "127.0.0.1", port: 9001, weight: 1, portName: "http" },
    { address: "fd00::1", port: 9002, weight: 2, portName: "http" },
  ]);
  return z;
}

const NAMES = [
  "web.catena",
  "_http._tcp.web.catena",
  "nope.catena",
  "catena",
  "example.com",
  "127-0-0-1.web.catena",
];
const TYPES: dnsPacket.RecordType[] = ["A", "AAAA", "SRV", "SOA", "NS", "TXT", "MX"];

function validQuery(seed: number): Buffer {
  return dnsPacket.encode({
    type: "query",
    id: seed & 0xffff,
    flags: seed & 1 ? dnsPacket.RECURSION_DESIRED : 0,
    questions: [
      {
        name: NAMES[seed % NAMES.length] as string,
        type: TYPES[seed % TYPES.length] as dnsPacket.RecordType,
      },
    ],
    ...(seed & 2
      ? {
          additionals: [
            {
              type: "OPT",
              name: ".",
              udpPayloadSize: 4096,
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

/** The answer must be a DNS response for this query id (or nothing at all). */
function checkAnswer(query: Uint8Array, answer: Buffer | undefined): dnsPacket.DecodedPacket | undefined {
  if (answer === undefined) return undefined;
  const decoded = dnsPacket.decode(answer);
  expect(decoded.type).toBe("response");
  expect(decoded.id).toBe(((query[0] as number) << 8) | (query[1] as number));
  return decoded;
}

const rcodeOf = (p: dnsPacket.DecodedPacket | undefined) => (p?.flags ?? 0) & 0xf;

describe("DNS bad input", () => {
  const responder = new Responder(zone());
  const respond = (packet: Uint8Array) => {
    const out = responder.respond(packet, "udp");
    if (out instanceof Promise) throw new Error("no upstream here: answers are synchronous");
    return out;
  };

  it("5,000 random packets: nothing throws, every answer is well formed for its id", () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 0, maxLength: 600 }), (bytes) => {
        // Make most of them look like queries, so they get past the first checks.
        if (bytes.length > 3 && (bytes[0] as number) % 4 !== 0) {
          bytes[2] = (bytes[2] as number) & 0x07;
          bytes[4] = 0;
          bytes[5] = 1;
        }
        checkAnswer(bytes, respond(bytes));
      }),
      { numRuns: 5000, seed: 42 },
    );
  });

  it("5,000 mutated valid queries: nothing throws; answers well formed; malformed questions are FORMERR", () => {
    let formerr = 0;
    fc.assert(
      fc.property(
        fc.nat(),
        fc.constantFrom("flip", "truncate", "label", "qdcount", "pointer", "extend", "arcount"),
        fc.nat(),
        (seed, mutation, where) => {
          const q = Buffer.from(validQuery(seed));
          let due = false;
          switch (mutation) {
            case "flip": {
              const i = 12 + (where % (q.length - 12));
              q[i] = (q[i] as number) ^ (1 << (where % 8));
              break;
            }
            case "truncate": {
              // Cut inside the question: always malformed.
              const questionEnd = q.indexOf(0, 12) + 5;
              q.writeUInt16BE(0, 10);
              const cut = 12 + (where % (questionEnd - 12));
              expect(rcodeOf(checkAnswer(q, respond(q.subarray(0, cut))))).toBe(1);
              formerr++;
              return;
            }
            case "label":
              q[12] = 64 + (where % 63); // a label length over 63
              due = true;
              break;
            case "qdcount":
              q.writeUInt16BE(where % 2 === 0 ? 0 : 2 + (where % 100), 4);
              due = true;
              break;
            case "pointer":
              q[12] = 0xc0; // a compression pointer in the question
              q[13] = where % 256;
              due = true;
              break;
            case "extend":
              // Trailing garbage after the message is tolerated.
              break;
            case "arcount":
              q.writeUInt16BE(2 + (where % 5), 10); // says more additionals than there are
              due = true;
              break;
          }
          const answer = checkAnswer(
            q,
            respond(mutation === "extend" ? Buffer.concat([q, Buffer.alloc(where % 50)]) : q),
          );
          if (due) {
            expect(rcodeOf(answer), mutation).toBe(1);
            formerr++;
          }
        },
      ),
      { numRuns: 5000, seed: 7 },
    );
    expect(formerr).toBeGreaterThan(2000);
    expect(responder.stats.formerr).toBeGreaterThanOrEqual(formerr);
  });

  describe("over the network", () => {
    let server: DnsServer;
    beforeAll(async () => {
      server = await DnsServer.start({
        host: "127.0.0.1",
        port: 0,
        responder: new Responder(zone()),
        tcpIdleTimeoutMs: 2000,
        maxTcpConnections: 16,
      });
    });
    afterAll(() => server?.close());

    it("10,000 bad packets over UDP and garbage over TCP leave the server answering", async () => {
      const socket = createSocket("udp4");
      await new Promise<void>((r) => socket.bind(0, "127.0.0.1", () => r()));
      const rng = fc.sample(fc.uint8Array({ minLength: 0, maxLength: 300 }), { numRuns: 5000, seed: 3 });
      const mutated = fc
        .sample(fc.tuple(fc.nat(), fc.nat()), { numRuns: 5000, seed: 4 })
        .map(([seed, at]) => {
          const q = Buffer.from(validQuery(seed));
          q[at % q.length] = at & 0xff;
          return q;
        });
      for (const [i, p] of [...rng, ...mutated].entries()) {
        socket.send(p, server.port, "127.0.0.1");
        if (i % 200 === 0) await new Promise((r) => setImmediate(r));
      }
      // Garbage over TCP: a frame announcing more than is sent, then a close.
      const { connect } = await import("node:net");
      const tcp = connect(server.port, "127.0.0.1");
      await new Promise<void>((r) => tcp.once("connect", () => r()));
      tcp.end(Buffer.from([0xff, 0xff, 1, 2, 3]));

      const good = validQuery(1234);
      // Answers to the bad packets may still be arriving: wait for the one to this id (UDP may drop).
      const answer = await new Promise<Buffer>((resolve) => {
        const retry = setInterval(() => socket.send(good, server.port, "127.0.0.1"), 200);
        const onMessage = (msg: Buffer) => {
          if (msg.length < 12 || msg.readUInt16BE(0) !== good.readUInt16BE(0) || (msg[2] as number) < 0x80)
            return;
          clearInterval(retry);
          socket.off("message", onMessage);
          resolve(msg);
        };
        socket.on("message", onMessage);
        socket.send(good, server.port, "127.0.0.1");
      });
      const decoded = dnsPacket.decode(answer);
      expect(decoded.questions?.[0]?.name).toBe(NAMES[1234 % NAMES.length]);
      socket.close();
    });
  });
});
