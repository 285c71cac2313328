// One line per problem, compiler style, so editors and terminals can jump to it:
// `chain.yaml:14:9 ServiceChain/web-edge spec.hops[1].function: ServiceFunction "edge-qoss" does not exist`
import type { ErrorDetail } from "../errors.js";

export function formatErrorDetail(detail: ErrorDetail, file?: string): string {
  const parts: string[] = [];
  const where = [file, detail.line, detail.line !== undefined ? detail.column : undefined]
    .filter((p) => p !== undefined && p !== "")
    .join(":");
  if (where) parts.push(where);
  if (detail.kind && detail.name) parts.push(`${detail.kind}/${detail.name}`);
  else if (detail.kind || detail.name) parts.push((detail.kind ?? detail.name)!);
  parts.push(detail.path ? `${detail.path}: ${detail.message}` : detail.message);
  return parts.join(" ");
}
