// Subjects and stream names of the event bus. Every name starts from a root (`catena` by default) so
// tests and several meshes can share one NATS server; the root is always a parameter, never read here.
import { CatenaError, ErrorCode } from "../errors.js";

export const DEFAULT_ROOT = "catena";

// NATS treats `.` as the token separator, `*` and `>` as wildcards, and whitespace ends a subject.
const UNSAFE_TOKEN = /[.*>\s]/g;
const BAD_ROOT_TOKEN = /[*>\s]/;
const BAD_STREAM_CHAR = /[^A-Z0-9_-]/g;

/** One subject token: `.`, `*`, `>` and whitespace become `_`; an empty token becomes `_`. */
export function subjectToken(value: string): string {
  return value === "" ? "_" : value.replace(UNSAFE_TOKEN, "_");
}

/** Throws CatenaError Invalid unless `root` is a usable subject prefix (`catena`, `t1`, `acme.prod`). */
export function checkRoot(root: string): string {
  const tokens = root.split(".");
  if (root === "" || tokens.some((t) => t === "" || BAD_ROOT_TOKEN.test(t))) {
    throw new CatenaError(ErrorCode.Invalid, `invalid subject root ${JSON.stringify(root)}`, [
      { path: "root", message: "must be non-empty dot-separated tokens without wildcards or whitespace" },
    ]);
  }
  return root;
}

/** `<root>.events.<kind>.<name>.<verb>`, kind and verb in lower case. */
export function eventSubject(root: string, kind: string, name: string, verb: string): string {
  return `${root}.events.${subjectToken(kind.toLowerCase())}.${subjectToken(name)}.${subjectToken(verb.toLowerCase())}`;
}

/** Every event under a root: `<root>.events.>`. */
export function eventsWildcard(root: string): string {
  return `${root}.events.>`;
}

/** A subscription pattern for some events; a missing part matches any token. */
export function eventPattern(
  root: string,
  filter: { kind?: string; name?: string; verb?: string } = {},
): string {
  const part = (v: string | undefined, lower: boolean) =>
    v === undefined ? "*" : subjectToken(lower ? v.toLowerCase() : v);
  return `${root}.events.${part(filter.kind, true)}.${part(filter.name, false)}.${part(filter.verb, true)}`;
}

/** The JetStream stream capturing `<root>.events.>`: `CATENA_EVENTS` for `catena`, `T1_EVENTS` for `t1`. */
export function streamName(root: string): string {
  return `${root.toUpperCase().replace(BAD_STREAM_CHAR, "_")}_EVENTS`;
}

/**
 * NATS subject matching: `*` matches exactly one token, `>` (only as the last token) one or more
 * trailing tokens. Subjects with empty tokens never match.
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  const p = pattern.split(".");
  const s = subject.split(".");
  for (let i = 0; i < p.length; i++) {
    const token = p[i];
    if (token === ">") return i === p.length - 1 && s.length > i && s.slice(i).every((t) => t !== "");
    const actual = s[i];
    if (actual === undefined || actual === "" || token === "") return false;
    if (token !== "*" && token !== actual) return false;
  }
  return p.length === s.length;
}
