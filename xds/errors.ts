// One error type for xds/, with stable codes: callers check err.code, not instanceof or strings.
export const XDS_ERR = {
  invalidOption: "XDS_ERR_INVALID_OPTION",
  unknownType: "XDS_ERR_UNKNOWN_TYPE",
  encode: "XDS_ERR_ENCODE",
  closed: "XDS_ERR_CLOSED",
} as const;

export type XdsErrorCode = (typeof XDS_ERR)[keyof typeof XDS_ERR];

export class XdsError extends Error {
  readonly code: XdsErrorCode;

  constructor(code: XdsErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "XdsError";
    this.code = code;
  }
}
