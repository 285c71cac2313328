import { CloudEvent as SdkCloudEvent } from "cloudevents";
import { describe, expect, it } from "vitest";
import { eventType, toCloudEvent } from "./cloudevent.js";

const now = new Date("2026-11-27T23:15:47.123Z");

describe("cloudevent", () => {
  it("maps a CatenaEvent onto CloudEvents 1.0 structured JSON", () => {
    const ce = toCloudEvent(
      {
        kind: "ServiceChain",
        name: "web-edge",
        verb: "Created",
        id: "ServiceChain/web-edge/7/created",
        data: { a: 1 },
      },
      "catena/control",
      now,
    );
    expect(ce).toEqual({
      specversion: "1.0",
      id: "ServiceChain/web-edge/7/created",
      source: "catena/control",
      type: "dev.catena.servicechain.created",
      subject: "web-edge",
      time: "2026-11-27T23:15:47.123Z",
      datacontenttype: "application/json",
      data: { a: 1 },
    });
    // The reference SDK validates the attributes (strict mode throws on a bad envelope).
    const parsed = new SdkCloudEvent(JSON.parse(JSON.stringify(ce)));
    expect(parsed.type).toBe("dev.catena.servicechain.created");
    expect(parsed.data).toEqual({ a: 1 });
  });

  it("gives each event without an id a fresh UUID", () => {
    const a = toCloudEvent({ kind: "xds", name: "n1", verb: "nacked" }, "s", now);
    const b = toCloudEvent({ kind: "xds", name: "n1", verb: "nacked" }, "s", now);
    expect(a.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(a.id).not.toBe(b.id);
    expect("data" in a).toBe(false);
  });

  it("time is RFC 3339 in UTC", () => {
    const ce = toCloudEvent({ kind: "qos", name: "q", verb: "throttled" }, "s", new Date(0));
    expect(ce.time).toBe("1970-01-01T00:00:00.000Z");
    expect(ce.time).toMatch(/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/);
  });

  it("type tokens follow the subject token rules", () => {
    expect(eventType("Fire Wall", "de.nied")).toBe("dev.catena.fire_wall.de_nied");
  });
});
