import { describe, expect, it } from "vitest";
import { checkRoot, eventPattern, eventSubject, streamName, subjectMatches } from "./subject.js";

describe("subjects", () => {
  it.each([
    {
      name: "plain",
      input: ["catena", "servicechain", "web-edge", "created"],
      expect: "catena.events.servicechain.web-edge.created",
    },
    {
      name: "kind and verb lower-cased",
      input: ["t1", "ServiceChain", "Web", "Created"],
      expect: "t1.events.servicechain.Web.created",
    },
    {
      name: "dots in a name",
      input: ["catena", "workload", "vm.1.local", "ready"],
      expect: "catena.events.workload.vm_1_local.ready",
    },
    { name: "wildcards in tokens", input: ["catena", "x*", "a>b", "*"], expect: "catena.events.x_.a_b._" },
    {
      name: "whitespace",
      input: ["catena", "fire wall", "a\tb\nc", "de nied"],
      expect: "catena.events.fire_wall.a_b_c.de_nied",
    },
    { name: "empty tokens", input: ["catena", "", "", ""], expect: "catena.events._._._" },
    {
      name: "dotted root",
      input: ["acme.prod", "xds", "node-1", "nacked"],
      expect: "acme.prod.events.xds.node-1.nacked",
    },
  ])("eventSubject: $name", ({ input, expect: want }) => {
    const [root, kind, name, verb] = input as [string, string, string, string];
    expect(eventSubject(root, kind, name, verb)).toBe(want);
  });

  it.each([
    { root: "catena", expect: "CATENA_EVENTS" },
    { root: "t1", expect: "T1_EVENTS" },
    { root: "acme.prod", expect: "ACME_PROD_EVENTS" },
    { root: "my-mesh", expect: "MY-MESH_EVENTS" },
    { root: "t$1", expect: "T_1_EVENTS" },
  ])("streamName($root) = $expect", ({ root, expect: want }) => {
    expect(streamName(root)).toBe(want);
  });

  it.each([
    { pattern: "catena.events.>", subject: "catena.events.service.web.created", match: true },
    { pattern: "catena.events.>", subject: "catena.events", match: false },
    { pattern: "catena.events.>", subject: "catena.eventsx.a", match: false },
    { pattern: "catena.>", subject: "catena.events", match: true },
    { pattern: "catena.events.*.web.*", subject: "catena.events.service.web.created", match: true },
    { pattern: "catena.events.*.web.*", subject: "catena.events.service.api.created", match: false },
    { pattern: "catena.events.*", subject: "catena.events.service.web", match: false },
    { pattern: "catena.events.*.*.*", subject: "catena.events.a.b.c", match: true },
    { pattern: "catena.events.*.*.*", subject: "catena.events.a.b", match: false },
    { pattern: "a.b.c", subject: "a.b.c", match: true },
    { pattern: "a.b.c", subject: "a.b.c.d", match: false },
    { pattern: "a.b.c.d", subject: "a.b.c", match: false },
    { pattern: "*", subject: "a", match: true },
    { pattern: ">", subject: "a.b", match: true },
    { pattern: "a.>.c", subject: "a.b.c", match: false },
    { pattern: "a.*", subject: "a.", match: false },
    { pattern: "t1.events.>", subject: "t2.events.a.b.c", match: false },
  ])("subjectMatches($pattern, $subject) = $match", ({ pattern, subject, match }) => {
    expect(subjectMatches(pattern, subject)).toBe(match);
  });

  it("eventPattern leaves missing parts as single-token wildcards", () => {
    expect(eventPattern("t1", { kind: "Service" })).toBe("t1.events.service.*.*");
    expect(eventPattern("t1", { name: "web", verb: "Created" })).toBe("t1.events.*.web.created");
    expect(
      subjectMatches(
        eventPattern("t1", { kind: "service" }),
        eventSubject("t1", "Service", "web", "deleted"),
      ),
    ).toBe(true);
  });

  it.each(["", "a..b", ".a", "a.", "a.*", "a.>", "a b"])(
    "checkRoot rejects %j with CATENA_INVALID",
    (root) => {
      expect(() => checkRoot(root)).toThrow(expect.objectContaining({ code: "CATENA_INVALID" }));
    },
  );

  it.each(["catena", "t1", "acme.prod"])("checkRoot accepts %j", (root) => {
    expect(checkRoot(root)).toBe(root);
  });
});
