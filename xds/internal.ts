// For sibling packages and tests that speak the wire directly; not part of the public API.

export { StatusTable } from "./server/client-status.js";
export * from "./wire/discovery.js";
export * from "./wire/proto-object.js";
export * from "./wire/services.js";
