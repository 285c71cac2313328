// The events package logs through this 4-method shape. It is pino's call order (fields, then message),
// so the control server's pino logger fits as it is, and nothing here imports a logging framework.
export interface EventsLogger {
  debug(fields: Record<string, unknown>, msg: string): void;
  info(fields: Record<string, unknown>, msg: string): void;
  warn(fields: Record<string, unknown>, msg: string): void;
  error(fields: Record<string, unknown>, msg: string): void;
}

export const silentLogger: EventsLogger = {
  debug() {},
  info() {},
  warn() {},
  error() {},
};
