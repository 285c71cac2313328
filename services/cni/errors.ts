// The plugin's one error type. Handlers throw it with a symbolic code; only the edge (skel.ts) turns
// the code into the spec's number. Anything that is not a PluginError is wrapped once there, as
// `Internal` (999), as CNI's skel does.
export const PluginErrorCode = {
  IncompatibleVersion: "IncompatibleVersion",
  UnsupportedField: "UnsupportedField",
  UnknownContainer: "UnknownContainer",
  InvalidEnvironment: "InvalidEnvironment",
  IoFailure: "IoFailure",
  DecodingFailure: "DecodingFailure",
  InvalidConfig: "InvalidConfig",
  TryAgainLater: "TryAgainLater",
  NotAvailable: "NotAvailable",
  /** Plugin-specific: the network has no free address (exhaustion is not transient enough for 11). */
  Exhausted: "Exhausted",
  /** Plugin-specific: CHECK found the container's attachment not as ADD left it. */
  CheckFailed: "CheckFailed",
  Internal: "Internal",
} as const;
export type PluginErrorCode = (typeof PluginErrorCode)[keyof typeof PluginErrorCode];

/** The CNI spec's numeric codes (SPEC.md "Error"); 100 and up are the plugin's own. */
export const CNI_ERROR_NUMBER: Readonly<Record<PluginErrorCode, number>> = {
  IncompatibleVersion: 1,
  UnsupportedField: 2,
  UnknownContainer: 3,
  InvalidEnvironment: 4,
  IoFailure: 5,
  DecodingFailure: 6,
  InvalidConfig: 7,
  TryAgainLater: 11,
  NotAvailable: 50,
  Exhausted: 100,
  CheckFailed: 101,
  Internal: 999,
};

export class PluginError extends Error {
  override readonly name = "PluginError";
  constructor(
    readonly code: PluginErrorCode,
    message: string,
    readonly details?: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function isPluginError(err: unknown): err is PluginError {
  return typeof err === "object" && err !== null && (err as { name?: unknown }).name === "PluginError";
}
