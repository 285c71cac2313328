// Error codes of the local runtime. Across packages, match on `code`, not `instanceof`.
export const RUNTIME_ERROR = {
  invalidArgument: "CATENA_RUNTIME_INVALID_ARGUMENT",
  addressesExhausted: "CATENA_RUNTIME_ADDRESSES_EXHAUSTED",
  closed: "CATENA_RUNTIME_CLOSED",
} as const;
export type RuntimeErrorCode = (typeof RUNTIME_ERROR)[keyof typeof RUNTIME_ERROR];

export class RuntimeError extends Error {
  override readonly name = "RuntimeError";
  constructor(
    readonly code: RuntimeErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
