// Exit statuses of the CLI contract: 0 success, 1 rejected request, 2 bad usage.
export const ExitCode = { Ok: 0, Rejected: 1, Usage: 2 } as const;
export type ExitCode = (typeof ExitCode)[keyof typeof ExitCode];

/** Thrown by commands to end with a given status after printing `lines` to stderr. */
export class ExitError extends Error {
  override readonly name = "ExitError";
  constructor(
    readonly exitCode: ExitCode,
    readonly lines: string[],
  ) {
    super(lines.join("\n"));
  }
}

export function usage(message: string): ExitError {
  return new ExitError(ExitCode.Usage, [`error: ${message}`]);
}
