// Kubernetes equality-based label selectors: `app=web,tier!=db,env,!legacy`.
import type { FieldError, Labels, Validated } from "../model/resource.js";
import type { LabelSelector } from "./store.js";

// Label keys and values as Kubernetes defines them: [prefix/]name, name and value at most 63 characters.
const NAME = /^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function keyProblem(key: string): string | undefined {
  if (key === "") return "missing label key";
  const slash = key.indexOf("/");
  const prefix = slash >= 0 ? key.slice(0, slash) : undefined;
  const name = slash >= 0 ? key.slice(slash + 1) : key;
  if (prefix !== undefined && (prefix.length > 253 || !DNS_SUBDOMAIN.test(prefix))) {
    return `invalid label key "${key}": the prefix must be a DNS subdomain`;
  }
  if (!NAME.test(name)) {
    return `invalid label key "${key}": at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
  }
  return undefined;
}

function valueProblem(value: string): string | undefined {
  if (value === "" || NAME.test(value)) return undefined;
  return `invalid label value "${value}": at most 63 characters, alphanumerics, '-', '_' or '.', starting and ending with an alphanumeric`;
}

type Requirement = { op: "=" | "!="; key: string; value: string } | { op: "exists" | "!exists"; key: string };

/** One requirement, or what is wrong with it. */
function parseRequirement(part: string): Requirement | string {
  if (part === "") return "empty requirement";
  if (part.includes("(") || /\s(in|notin)\s/.test(part)) {
    return `set-based requirement "${part}" is not supported; use =, ==, !=, key or !key`;
  }
  let requirement: Requirement;
  const ne = part.indexOf("!=");
  const eq = part.indexOf("=");
  if (ne >= 0) {
    requirement = { op: "!=", key: part.slice(0, ne).trim(), value: part.slice(ne + 2).trim() };
  } else if (eq >= 0) {
    const valueAt = part.startsWith("==", eq) ? eq + 2 : eq + 1;
    requirement = { op: "=", key: part.slice(0, eq).trim(), value: part.slice(valueAt).trim() };
  } else if (part.startsWith("!")) {
    requirement = { op: "!exists", key: part.slice(1).trim() };
  } else {
    requirement = { op: "exists", key: part };
  }
  const problem =
    keyProblem(requirement.key) ?? ("value" in requirement ? valueProblem(requirement.value) : undefined);
  return problem ?? requirement;
}

/**
 * Parses `key=value`, `key==value`, `key!=value`, `key` (exists) and `!key` (does not exist),
 * comma-separated; every requirement must hold. The empty selector matches everything.
 * Set-based requirements (`in`, `notin`) are not supported. Errors name `path[i]`, i the
 * requirement's index.
 */
export function parseLabelSelector(text: string, path = "labelSelector"): Validated<LabelSelector> {
  const errors: FieldError[] = [];
  const equals: Labels = {};
  const notEquals: Labels = {};
  const exists = new Set<string>();
  const notExists = new Set<string>();
  if (text.trim() === "") return { ok: true, value: {} };

  text.split(",").forEach((raw, i) => {
    const fail = (message: string): void => {
      errors.push({ path: `${path}[${i}]`, message });
    };
    const requirement = parseRequirement(raw.trim());
    if (typeof requirement === "string") {
      fail(requirement);
      return;
    }
    const { key } = requirement;
    switch (requirement.op) {
      case "=":
        if (Object.hasOwn(equals, key) && equals[key] !== requirement.value) {
          fail(`conflicting requirements ${key}=${equals[key]} and ${key}=${requirement.value}`);
        } else {
          equals[key] = requirement.value;
        }
        return;
      case "!=":
        // The LabelSelector shape holds one value per key; `a!=x,a!=y` would need a set.
        if (Object.hasOwn(notEquals, key) && notEquals[key] !== requirement.value) {
          fail(`only one != requirement per key is supported (${key})`);
        } else {
          notEquals[key] = requirement.value;
        }
        return;
      case "exists":
        exists.add(key);
        return;
      case "!exists":
        notExists.add(key);
        return;
    }
  });

  if (errors.length > 0) return { ok: false, errors };
  const selector: LabelSelector = {};
  if (Object.keys(equals).length > 0) selector.equals = equals;
  if (Object.keys(notEquals).length > 0) selector.notEquals = notEquals;
  if (exists.size > 0) selector.exists = [...exists];
  if (notExists.size > 0) selector.notExists = [...notExists];
  return { ok: true, value: selector };
}

/** The selector back as text, in the syntax `parseLabelSelector` reads. */
export function formatLabelSelector(selector: LabelSelector): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(selector.equals ?? {})) parts.push(`${key}=${value}`);
  for (const [key, value] of Object.entries(selector.notEquals ?? {})) parts.push(`${key}!=${value}`);
  for (const key of selector.exists ?? []) parts.push(key);
  for (const key of selector.notExists ?? []) parts.push(`!${key}`);
  return parts.join(",");
}

/** True when `labels` satisfy every requirement; `key!=value` also holds when the key is absent. */
export function matchesSelector(labels: Labels | undefined, selector: LabelSelector): boolean {
  // hasOwn, not `in` or indexing: `constructor` must not match Object.prototype.
  const has = (key: string) => labels !== undefined && Object.hasOwn(labels, key);
  for (const [key, value] of Object.entries(selector.equals ?? {})) {
    if (!has(key) || labels?.[key] !== value) return false;
  }
  for (const [key, value] of Object.entries(selector.notEquals ?? {})) {
    if (has(key) && labels?.[key] === value) return false;
  }
  for (const key of selector.exists ?? []) if (!has(key)) return false;
  for (const key of selector.notExists ?? []) if (has(key)) return false;
  return true;
}
