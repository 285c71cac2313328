// Stable codes for the errors functions/sdk throws; callers match on `code`, not on classes or text.
export const SDK_ERROR = {
  invalidArgument: "CATENA_SDK_INVALID_ARGUMENT",
  proxyHeaderInvalid: "CATENA_SDK_PROXY_HEADER_INVALID",
  closed: "CATENA_SDK_CLOSED",
  /** A function name or filter type URL registered twice. */
  duplicateRegistration: "CATENA_SDK_DUPLICATE_REGISTRATION",
  /** `catena function TYPE` names no built-in and no plugin defines it. */
  unknownFunction: "CATENA_SDK_UNKNOWN_FUNCTION",
  /** A --plugin module that cannot be loaded or whose default export is not a defineFunction result. */
  badPlugin: "CATENA_SDK_BAD_PLUGIN",
  /** No upstream could be connected (no endpoint, all attempts failed, circuit open). */
  upstreamUnavailable: "CATENA_SDK_UPSTREAM_UNAVAILABLE",
} as const;

export type SdkErrorCode = (typeof SDK_ERROR)[keyof typeof SDK_ERROR];

export class SdkError extends Error {
  override readonly name = "SdkError";
  constructor(
    readonly code: SdkErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
