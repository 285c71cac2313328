// Stable codes for the errors functions/sdk throws; callers match on `code`, not on classes or text.
export const SDK_ERROR = {
  invalidArgument: "CATENA_SDK_INVALID_ARGUMENT",
  proxyHeaderInvalid: "CATENA_SDK_PROXY_HEADER_INVALID",
  closed: "CATENA_SDK_CLOSED",
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
