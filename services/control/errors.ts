// Error codes of the control plane. Across packages, match on `code`, not `instanceof`.
export const ErrorCode = {
  Invalid: "CATENA_INVALID",
  NotFound: "CATENA_NOT_FOUND",
  Conflict: "CATENA_CONFLICT",
  Unavailable: "CATENA_UNAVAILABLE",
  Closed: "CATENA_CLOSED",
  Internal: "CATENA_INTERNAL",
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** A problem located in a request: which document, which object, which field. */
export interface ErrorDetail {
  /** Index of the document in the request (0-based), when the request carried several. */
  document?: number;
  kind?: string;
  name?: string;
  /** Field path inside the document, `spec.hops[1].function`; empty for the document itself. */
  path: string;
  message: string;
  /** Filled in when the server parsed the source text itself (1-based). */
  line?: number;
  column?: number;
}

export class CatenaError extends Error {
  override readonly name = "CatenaError";
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetail[] = [],
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isCatenaError(err: unknown, code?: ErrorCode): err is CatenaError {
  return (
    typeof err === "object" &&
    err !== null &&
    (err as { name?: unknown }).name === "CatenaError" &&
    (code === undefined || (err as { code?: unknown }).code === code)
  );
}
