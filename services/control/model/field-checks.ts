// Checks of single field values that JSON Schema cannot express (CIDRs, addresses, ranges,
// uniqueness). They run beside the schema, so they skip values of the wrong type: the schema
// already reports those, and one problem should give one message.
import { formatFieldPath, type PathSegment } from "./field-path.js";
import { type Cidr, cidrContains, formatCidr, type IpAddress, parseCidr, parseIp } from "./ip.js";
import type { FieldError } from "./resource.js";

export type Path = readonly PathSegment[];

/** Collects FieldErrors; checks add to it and never throw. */
export class Problems {
  readonly list: FieldError[] = [];
  add(path: Path, message: string): void {
    this.list.push({ path: formatFieldPath(path), message });
  }
}

export function asRecord(value: unknown): Record<string, unknown> | undefined {
  return typeof value === "object" && value !== null && !Array.isArray(value)
    ? (value as Record<string, unknown>)
    : undefined;
}

export function asArray(value: unknown): readonly unknown[] {
  return Array.isArray(value) ? value : [];
}

export function isPort(value: unknown): value is number {
  return Number.isInteger(value) && (value as number) >= 1 && (value as number) <= 65535;
}

export function checkCidr(problems: Problems, path: Path, value: unknown): Cidr | undefined {
  if (typeof value !== "string") return undefined;
  const parsed = parseCidr(value);
  if (parsed.ok) return parsed.value;
  problems.add(path, parsed.message);
  return undefined;
}

export function checkIp(problems: Problems, path: Path, value: unknown): IpAddress | undefined {
  if (typeof value !== "string") return undefined;
  const address = parseIp(value);
  if (!address) problems.add(path, `"${value}" is not an IPv4 or IPv6 address`);
  return address;
}

/** `except`/`exclude` entries: each a CIDR inside `parent`. */
export function checkSubnets(problems: Problems, path: Path, value: unknown, parent: Cidr | undefined): void {
  asArray(value).forEach((item, i) => {
    const cidr = checkCidr(problems, [...path, i], item);
    if (cidr && parent && !cidrContains(parent, cidr)) {
      problems.add([...path, i], `${formatCidr(cidr)} is not inside ${formatCidr(parent)}`);
    }
  });
}

/** `{port, endPort}`: a range needs endPort >= port. */
export function checkPortRange(problems: Problems, path: Path, value: unknown): void {
  const range = asRecord(value);
  if (!range || !isPort(range.port) || !isPort(range.endPort)) return;
  if (range.endPort < range.port) {
    problems.add([...path, "endPort"], `must be at least port (${range.port})`);
  }
}

/** Items of a list must differ in `key` (port names, network names). */
export function checkUnique(problems: Problems, path: Path, list: unknown, key: string, what: string): void {
  const first = new Map<unknown, number>();
  asArray(list).forEach((item, i) => {
    const value = asRecord(item)?.[key];
    if (value === undefined || typeof value === "object") return;
    const earlier = first.get(value);
    if (earlier === undefined) first.set(value, i);
    else {
      problems.add(
        [...path, i, key],
        `duplicate ${what} ${JSON.stringify(value)} (also ${formatFieldPath([...path, earlier, key])})`,
      );
    }
  });
}

/** Ports of one object must not repeat a (port, protocol) pair. */
export function checkUniquePorts(problems: Problems, path: Path, list: unknown): void {
  const first = new Map<string, number>();
  asArray(list).forEach((item, i) => {
    const port = asRecord(item);
    if (!port || !isPort(port.port)) return;
    const protocol = typeof port.protocol === "string" ? port.protocol : "TCP";
    const key = `${port.port}/${protocol}`;
    const earlier = first.get(key);
    if (earlier === undefined) first.set(key, i);
    else {
      problems.add(
        [...path, i, "port"],
        `port ${port.port}/${protocol} is already declared at ${formatFieldPath([...path, earlier])}`,
      );
    }
  });
}

const LABEL_NAME_MAX = 63;
const LABEL_PREFIX_MAX = 253;

/** Lengths of label keys, which the schema's pattern cannot bound per part. */
export function checkLabelKeys(problems: Problems, path: Path, labels: unknown): void {
  const record = asRecord(labels);
  if (!record) return;
  for (const key of Object.keys(record)) {
    const slash = key.indexOf("/");
    const prefix = slash < 0 ? "" : key.slice(0, slash);
    const name = slash < 0 ? key : key.slice(slash + 1);
    if (name.length > LABEL_NAME_MAX) {
      problems.add([...path, key], `invalid key: the name part must be at most ${LABEL_NAME_MAX} characters`);
    }
    if (prefix.length > LABEL_PREFIX_MAX) {
      problems.add([...path, key], `invalid key: the prefix must be at most ${LABEL_PREFIX_MAX} characters`);
    }
  }
}
