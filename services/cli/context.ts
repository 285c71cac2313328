// What every command gets: where the server is, and where to write.
import { type Kind, resolveKind } from "../control/model/resource.js";
import type { ApiClient } from "./client.js";
import { usage } from "./exit.js";

export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  stdin(): Promise<string>;
  /** Whether stderr is a terminal (progress lines redraw in place). */
  interactive: boolean;
}

export interface CliContext {
  io: CliIo;
  client(): ApiClient;
}

export function kindArg(text: string): Kind {
  const kind = resolveKind(text);
  if (!kind) {
    throw usage(
      `unknown kind "${text}" (one of Network, Workload, Service, ServiceFunction, ServiceChain, NetworkPolicy)`,
    );
  }
  return kind;
}
