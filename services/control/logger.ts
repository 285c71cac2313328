// One pino logger per process: JSON lines by default (for collectors), readable on a terminal.
import { type Logger as PinoLogger, pino } from "pino";

export type Logger = PinoLogger;

export interface LoggerOptions {
  name: string;
  level?: string;
  /** Pretty-print; defaults to stdout being a terminal. */
  pretty?: boolean;
}

export function createLogger(options: LoggerOptions): Logger {
  const pretty = options.pretty ?? process.stdout.isTTY === true;
  return pino({
    name: options.name,
    level: options.level ?? process.env.CATENA_LOG_LEVEL ?? "info",
    ...(pretty
      ? { transport: { target: "pino-pretty", options: { colorize: true, translateTime: "HH:MM:ss.l" } } }
      : {}),
  });
}
