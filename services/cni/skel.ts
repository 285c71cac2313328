// The plugin skeleton, after containernetworking/cni pkg/skel: environment parsed from one table,
// stdin decoded and version-checked once, the command dispatched to a handler, and every failure
// printed as the spec's error object on stdout with a non-zero exit. Environment, stdin and stdout
// are fields of `io`, so tests drive it without a process.
import { CNI_ERROR_NUMBER, isPluginError, PluginError, PluginErrorCode } from "./errors.js";
import {
  type CniResult,
  type CniVersion,
  isSupported,
  LATEST_VERSION,
  requireVersion,
  resultFor,
  SUPPORTED_VERSIONS,
} from "./version.js";

export const COMMANDS = ["ADD", "DEL", "CHECK", "VERSION", "STATUS", "GC"] as const;
export type Command = (typeof COMMANDS)[number];

export interface CmdArgs {
  command: Command;
  containerId: string;
  netns: string;
  ifname: string;
  /** CNI_ARGS as given (`K=V;K2=V2`). */
  args: string;
  path: string;
  /** The network configuration from stdin, decoded. */
  config: Record<string, unknown>;
  version: CniVersion;
}

/** Handlers must be safe to run twice: runtimes retry. */
export interface PluginFuncs {
  add(args: CmdArgs): Promise<CniResult>;
  del(args: CmdArgs): Promise<void>;
  check(args: CmdArgs): Promise<void>;
  status(args: CmdArgs): Promise<void>;
  gc(args: CmdArgs): Promise<void>;
}

export interface PluginIo {
  getenv(name: string): string | undefined;
  readStdin(): Promise<string>;
  writeStdout(text: string): void;
  writeStderr(text: string): void;
}

type EnvField = "command" | "containerId" | "netns" | "ifname" | "args" | "path";

/** CNI's rules for the two identifiers that end up in names (pkg/utils: ValidateContainerID, ValidateInterfaceName). */
const CONTAINER_ID = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function interfaceNameProblem(name: string): string | undefined {
  if (name.length > 15) return "is longer than 15 characters";
  if (name === "." || name === "..") return `is "${name}"`;
  if (/[/:\s]/.test(name)) return "contains '/', ':' or whitespace";
  return undefined;
}

/** Which variable fills which field, for which commands it is required, and how it is checked. */
const ENV_TABLE: readonly {
  name: string;
  field: EnvField;
  requiredFor: readonly Command[];
  problem?: (value: string) => string | undefined;
}[] = [
  { name: "CNI_COMMAND", field: "command", requiredFor: COMMANDS },
  {
    name: "CNI_CONTAINERID",
    field: "containerId",
    requiredFor: ["ADD", "DEL", "CHECK"],
    problem: (v) =>
      CONTAINER_ID.test(v)
        ? undefined
        : "must be letters, digits, '_', '.' or '-', not starting with a symbol",
  },
  { name: "CNI_NETNS", field: "netns", requiredFor: ["ADD", "CHECK"] },
  {
    name: "CNI_IFNAME",
    field: "ifname",
    requiredFor: ["ADD", "DEL", "CHECK"],
    problem: interfaceNameProblem,
  },
  { name: "CNI_ARGS", field: "args", requiredFor: [] },
  { name: "CNI_PATH", field: "path", requiredFor: ["ADD", "DEL", "CHECK", "STATUS", "GC"] },
];

function envArgs(io: PluginIo, command: Command): Record<EnvField, string> {
  const out: Record<EnvField, string> = {
    command,
    containerId: "",
    netns: "",
    ifname: "",
    args: "",
    path: "",
  };
  const missing: string[] = [];
  const invalid: string[] = [];
  for (const row of ENV_TABLE) {
    const value = io.getenv(row.name) ?? "";
    if (value === "") {
      if (row.requiredFor.includes(command)) missing.push(row.name);
      continue;
    }
    const problem = row.problem?.(value);
    if (problem) invalid.push(`${row.name} ${JSON.stringify(value)} ${problem}`);
    out[row.field] = value;
  }
  if (missing.length > 0 || invalid.length > 0) {
    const parts = [
      ...(missing.length > 0 ? [`required env variables [${missing.join(",")}] missing`] : []),
      ...invalid,
    ];
    throw new PluginError(PluginErrorCode.InvalidEnvironment, parts.join("; "));
  }
  return out;
}

function decodeConfig(text: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new PluginError(
      PluginErrorCode.DecodingFailure,
      "error decoding network configuration",
      String(err),
    );
  }
  if (typeof value !== "object" || value === null || Array.isArray(value)) {
    throw new PluginError(PluginErrorCode.DecodingFailure, "network configuration must be a JSON object");
  }
  return value as Record<string, unknown>;
}

function configVersion(config: Record<string, unknown>): CniVersion {
  // An absent cniVersion means 0.1.0, as libcni reads it.
  const v = config.cniVersion ?? "0.1.0";
  if (!isSupported(v)) {
    throw new PluginError(
      PluginErrorCode.IncompatibleVersion,
      `incompatible CNI versions; config is ${JSON.stringify(v)}, plugin supports [${SUPPORTED_VERSIONS.map((s) => `"${s}"`).join(" ")}]`,
    );
  }
  return v;
}

/** Runs one invocation; returns the process exit code. */
export async function dispatch(funcs: PluginFuncs, io: PluginIo, about: string): Promise<number> {
  let version: string = LATEST_VERSION;
  try {
    const rawCommand = io.getenv("CNI_COMMAND") ?? "";
    if (rawCommand === "")
      throw new PluginError(
        PluginErrorCode.InvalidEnvironment,
        "required env variables [CNI_COMMAND] missing",
      );
    if (!(COMMANDS as readonly string[]).includes(rawCommand)) {
      throw new PluginError(PluginErrorCode.InvalidEnvironment, `unknown CNI_COMMAND: ${rawCommand}`);
    }
    const command = rawCommand as Command;
    if (command === "VERSION") {
      const text = (await io.readStdin()).trim();
      const requested = text === "" ? undefined : decodeConfig(text).cniVersion;
      if (isSupported(requested)) version = requested;
      io.writeStdout(`${JSON.stringify({ cniVersion: version, supportedVersions: SUPPORTED_VERSIONS })}\n`);
      return 0;
    }
    const env = envArgs(io, command);
    const config = decodeConfig(await io.readStdin());
    const cniVersion = configVersion(config);
    version = cniVersion;
    const args: CmdArgs = { ...env, command, config, version: cniVersion };
    switch (command) {
      case "ADD": {
        const result = await funcs.add(args);
        io.writeStdout(`${JSON.stringify(resultFor(cniVersion, result))}\n`);
        return 0;
      }
      case "DEL":
        await funcs.del(args);
        return 0;
      case "CHECK":
        requireVersion(cniVersion, "0.4.0", "CHECK");
        await funcs.check(args);
        return 0;
      case "STATUS":
        requireVersion(cniVersion, "1.1.0", "STATUS");
        await funcs.status(args);
        return 0;
      case "GC":
        requireVersion(cniVersion, "1.1.0", "GC");
        await funcs.gc(args);
        return 0;
    }
  } catch (err) {
    const e = isPluginError(err)
      ? err
      : new PluginError(
          PluginErrorCode.Internal,
          err instanceof Error ? err.message : String(err),
          undefined,
          { cause: err },
        );
    const body: Record<string, unknown> = {
      cniVersion: version,
      code: CNI_ERROR_NUMBER[e.code],
      msg: e.message,
    };
    if (e.details) body.details = e.details;
    io.writeStdout(`${JSON.stringify(body)}\n`);
    io.writeStderr(`${about}: ${e.message}${e.details ? ` (${e.details})` : ""}\n`);
    return 1;
  }
}
