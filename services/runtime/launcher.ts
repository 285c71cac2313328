// How the runtime starts a function instance: the `catena function TYPE` command of the function
// instance contract (DESIGN.md "Contracts: Function instance"), one process per instance (Node 20
// has no SO_REUSEPORT, so instances could not share a listening port anyway; each binds its own IP).
import { type ChildProcess, spawn } from "node:child_process";

/** One instance as the runtime starts it. */
export interface InstanceSpec {
  /** The instance id: the xDS node id, `<function>-<index>`. */
  id: string;
  /** The ServiceFunction it runs. */
  function: string;
  type: string;
  /** Its own address: listeners bind it, upstream connections are sent from it. */
  address: string;
  /** A third-party type's module (the ServiceFunction's `plugin`). */
  plugin?: string;
  /** More flags for this instance (the discovery function's `--dns-addr`). */
  extraArgs: readonly string[];
}

export interface Launcher {
  spawn(spec: InstanceSpec): ChildProcess;
}

export interface CommandLauncherOptions {
  /** The `catena` command as argv: [node, ...execArgv, main script]. */
  command: readonly string[];
  /** The control server's xDS address(es), `host:port[,host:port]`. */
  xdsAddr: string;
  /** Environment of every instance (NATS URL and root, log level). */
  env: NodeJS.ProcessEnv;
}

/** The argv of `catena function` for one instance (exported for tests and the deploy cross-check). */
export function functionArgs(spec: InstanceSpec, xdsAddr: string): string[] {
  return [
    "function",
    spec.type,
    "--function",
    spec.function,
    "--node-id",
    spec.id,
    "--xds-addr",
    xdsAddr,
    "--address",
    spec.address,
    ...(spec.plugin ? ["--plugin", spec.plugin] : []),
    ...spec.extraArgs,
  ];
}

export function commandLauncher(options: CommandLauncherOptions): Launcher {
  const [file, ...prefix] = options.command;
  if (!file) throw new Error("commandLauncher: empty command");
  return {
    spawn: (spec) =>
      spawn(file, [...prefix, ...functionArgs(spec, options.xdsAddr)], {
        env: options.env,
        // Its own process group: a terminal's Ctrl-C reaches only the runtime, which then stops the
        // instances itself (and does not mistake their exit for a crash).
        detached: true,
        stdio: ["ignore", "pipe", "pipe"],
      }),
  };
}

/**
 * This very `catena` program, for starting more of itself: node, its flags (the tsx loader when
 * run from source) minus debugger flags (their port would clash), and the main script.
 */
export function selfCommand(): string[] {
  const execArgv = process.execArgv.filter((a) => !/^--inspect/.test(a));
  const main = process.argv[1];
  if (!main) throw new Error("selfCommand: no main script in process.argv");
  return [process.execPath, ...execArgv, main];
}
