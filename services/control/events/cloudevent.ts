// CatenaEvent → CloudEvents 1.0, structured JSON mode.
import { randomUUID } from "node:crypto";
import { subjectToken } from "./subject.js";
import type { CatenaEvent, CloudEvent } from "./types.js";

/** NATS header and HTTP content type of a structured-mode CloudEvent. */
export const CLOUDEVENTS_CONTENT_TYPE = "application/cloudevents+json";

/** `dev.catena.<kind>.<verb>`, with the same token rules as subjects so the two always agree. */
export function eventType(kind: string, verb: string): string {
  return `dev.catena.${subjectToken(kind.toLowerCase())}.${subjectToken(verb.toLowerCase())}`;
}

export function toCloudEvent(event: CatenaEvent, source: string, now: Date): CloudEvent {
  const ce: CloudEvent = {
    specversion: "1.0",
    id: event.id === undefined || event.id === "" ? randomUUID() : event.id,
    source,
    type: eventType(event.kind, event.verb),
    subject: event.name,
    time: now.toISOString(),
    datacontenttype: "application/json",
  };
  // An absent attribute is left out rather than sent as null (CloudEvents 1.0, section 3.1).
  if (event.data !== undefined) ce.data = event.data;
  return ce;
}
