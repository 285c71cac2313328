import { describe, expect, it } from "vitest";
import type { ErrorDetail } from "../errors.js";
import { formatErrorDetail } from "./format-error.js";

const full: ErrorDetail = {
  document: 5,
  kind: "ServiceChain",
  name: "web-edge",
  path: "spec.hops[1].function",
  message: 'ServiceFunction "edge-qoss" does not exist',
  line: 14,
  column: 9,
};

describe("formatErrorDetail", () => {
  it.each<{ name: string; detail: ErrorDetail; file?: string; text: string }>([
    {
      name: "everything known",
      detail: full,
      file: "chain.yaml",
      text: 'chain.yaml:14:9 ServiceChain/web-edge spec.hops[1].function: ServiceFunction "edge-qoss" does not exist',
    },
    {
      name: "no file",
      detail: full,
      text: '14:9 ServiceChain/web-edge spec.hops[1].function: ServiceFunction "edge-qoss" does not exist',
    },
    {
      name: "no line",
      detail: { ...full, line: undefined, column: undefined },
      file: "chain.yaml",
      text: 'chain.yaml ServiceChain/web-edge spec.hops[1].function: ServiceFunction "edge-qoss" does not exist',
    },
    {
      name: "line without column",
      detail: { path: "", message: "Map keys must be unique", line: 3 },
      file: "a.yaml",
      text: "a.yaml:3 Map keys must be unique",
    },
    {
      name: "no object, no path",
      detail: { path: "", message: "the request holds no documents" },
      text: "the request holds no documents",
    },
    {
      name: "kind without name",
      detail: { kind: "Gateway", path: "kind", message: "must be one of: Network" },
      text: "Gateway kind: must be one of: Network",
    },
  ])("$name", ({ detail, file, text }) => {
    expect(formatErrorDetail(detail, file)).toBe(text);
  });
});
