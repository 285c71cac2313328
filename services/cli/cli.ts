// The `catena` command (DESIGN.md "Contracts: CLI"): the program, runnable in-process by tests.
import { Command, CommanderError, Option } from "commander";
import { DEFAULTS, readEnvironment } from "../control/environment.js";
import { isCatenaError } from "../control/errors.js";
import { VERSION } from "../control/version.js";
import { ApiClient, UnreachableError } from "./client.js";
import { UP_DEFAULTS, upCommand } from "./commands/up.js";
import type { CliContext, CliIo } from "./context.js";
import { ExitCode, ExitError } from "./exit.js";

// Commands are loaded when they run: a function instance (`catena function`) should not pay for the
// manifest validators, and `catena get` not for the control server.
export function buildProgram(io: CliIo): Command {
  const program = new Command("catena")
    .description("Catena: a network services mesh of pluggable service functions")
    .option("--server <url>", "control server URL (env CATENA_SERVER)")
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError("(add --help for usage)");
  const ctx: CliContext = {
    io,
    client: () => new ApiClient((program.opts().server as string | undefined) ?? readEnvironment().server),
  };

  const serverFlags = (cmd: Command) =>
    cmd
      .option("--api-addr <host:port>", "HTTP API address", DEFAULTS.apiAddr)
      .option("--xds-addr <host:port>", "xDS gRPC address", DEFAULTS.xdsAddr)
      .option("--data-dir <dir>", `state directory (default ${DEFAULTS.dataDir}, env CATENA_DATA_DIR)`)
      .addOption(
        new Option(
          "--store <kind>",
          "where state lives: the data directory, or a JetStream KV bucket at CATENA_NATS_URL",
        )
          .choices(["embedded", "nats-kv"])
          .default("embedded"),
      )
      .option("--trust-domain <domain>", "SPIFFE trust domain of the mesh CA", "catena.local")
      .option(
        "--ca-cert <file>",
        "the mesh CA's root certificate (PEM), instead of one kept in the data directory",
      )
      .option("--ca-key <file>", "the key of --ca-cert (PKCS#8 PEM, mode 0600)")
      .option(
        "--cert-lifetime <duration>",
        "lifetime of instance certificates; renewed at two thirds",
        "24h",
      );
  serverFlags(program.command("control").description("run the control server")).action(async (flags) =>
    (await import("./commands/server.js")).controlCommand(ctx, flags),
  );
  serverFlags(program.command("up").description("run the whole mesh on this machine"))
    .option("--demo", "also run demo backends and the edge-chain example, and print what to try")
    .option("--dns-addr <host:port>", "where the discovery DNS answers", UP_DEFAULTS.dnsAddr)
    .option(
      "--instance-cidr <cidr>",
      "loopback range function instances get addresses from",
      UP_DEFAULTS.instanceCidr,
    )
    .option("--demo-cidr <cidr>", "with --demo: the demo Network's CIDR instead of the example's")
    .action((flags) => upCommand(ctx, flags));

  program
    .command("function")
    .description("run a function instance: firewall, qos, loadbalancer, or a plugin's type")
    .argument("[type]", "function type (env CATENA_FUNCTION_TYPE)")
    .option("--function <name>", "the ServiceFunction's name (env CATENA_FUNCTION)")
    .option("--node-id <id>", "this instance's xDS node id (env CATENA_NODE_ID)")
    .option("--xds-addr <host:port,...>", "xDS servers, tried in turn (env CATENA_XDS_ADDR)")
    .option("--address <ip>", "this instance's own address (env CATENA_ADDRESS)")
    .option("--admin-addr <host:port>", "admin server (env CATENA_ADMIN_ADDR)")
    .option("--plugin <module>", "a third-party function module (env CATENA_PLUGIN)")
    .option("--dns-addr <host:port>", "discovery: where DNS answers, UDP and TCP (default 127.0.0.1:8053)")
    .option("--zone <zone>", "discovery: the zone answered (default catena.)")
    .option("--ttl <seconds>", "discovery: TTL of answers (default 5)")
    .option("--upstream <ip[:port]>", "discovery: resolver for names outside the zone (else REFUSED)")
    .option("--dns-workers <n>", "discovery: processes answering DNS, sharing the port (default 1)")
    .action(async (type: string | undefined, flags) =>
      (await import("./commands/function.js")).functionCommand(ctx, type, flags),
    );

  program
    .command("apply")
    .description("create or update objects from manifests (atomic across all documents)")
    .requiredOption("-f, --filename <path...>", "file, directory or - for stdin")
    .option("--dry-run", "validate and show what would change, change nothing")
    .option("--wait", "wait until every applied object is Ready")
    .option("--timeout <duration>", "how long --wait waits", "60s")
    .action(async (options) => (await import("./commands/apply.js")).applyCommand(ctx, options));

  program
    .command("delete")
    .description("delete objects: delete -f FILE, or delete KIND NAME")
    .argument("[kind]")
    .argument("[name]")
    .option("-f, --filename <path...>", "file, directory or - for stdin")
    .option("--dry-run", "show what would be deleted")
    .option("--ignore-not-found", "skip objects that do not exist instead of failing")
    .action(async (kind: string | undefined, name: string | undefined, options) => {
      if (options.filename) {
        if (kind) throw new ExitError(ExitCode.Usage, ["error: give either -f FILE or KIND NAME, not both"]);
        return (await import("./commands/apply.js")).deleteFromFiles(ctx, options);
      }
      if (!kind || !name) throw new ExitError(ExitCode.Usage, ["error: delete needs -f FILE or KIND NAME"]);
      return (await import("./commands/get.js")).deleteByName(ctx, kind, name);
    });

  program
    .command("get")
    .description("list objects of a kind, or show one")
    .argument("<kind>")
    .argument("[name]")
    .addOption(new Option("-o, --output <format>", "table, yaml or json").default("table"))
    .option("-l, --selector <selector>", "label selector, e.g. app=web,tier!=db")
    .action(async (kind: string, name: string | undefined, options) =>
      (await import("./commands/get.js")).getCommand(ctx, kind, name, options),
    );

  program
    .command("describe")
    .description("show an object with its conditions and recent events")
    .argument("<kind>")
    .argument("<name>")
    .action(async (kind: string, name: string) =>
      (await import("./commands/get.js")).describeCommand(ctx, kind, name),
    );

  program
    .command("validate")
    .description("check manifests offline (no server needed)")
    .requiredOption("-f, --filename <path...>", "file, directory or - for stdin")
    .action(async (options) => (await import("./commands/apply.js")).validateCommand(ctx, options));

  program
    .command("events")
    .description("show recent events, or follow them")
    .option("--follow", "keep streaming new events")
    .option(
      "--type <type>",
      "only this CloudEvents type (dev.catena.servicechain.created, or a prefix ending in *)",
    )
    .option("--limit <n>", "how many recent events without --follow", "100")
    .addOption(new Option("-o, --output <format>", "table or json").default("table"))
    .action(async (options) => (await import("./commands/events.js")).eventsCommand(ctx, options));

  program
    .command("lookup")
    .description("a Service's endpoints as the mesh resolves it; --watch follows every change")
    .argument("<service>")
    .option("--watch", "keep printing the endpoints whenever they change")
    .option("--all", "include unhealthy endpoints (and show health)")
    .option("--wait <duration>", "how long one watch request may wait on the server", "5m")
    .addOption(new Option("-o, --output <format>", "table or json").default("table"))
    .action(async (service: string, options) =>
      (await import("./commands/lookup.js")).lookupCommand(ctx, service, options),
    );

  program
    .command("status")
    .description("each xDS node's config versions and ACK/NACK state")
    .addOption(new Option("-o, --output <format>", "table or json").default("table"))
    .action(async (options) => (await import("./commands/status.js")).statusCommand(ctx, options));

  program
    .command("schema")
    .description("print the JSON Schema of Catena manifests (for editors)")
    .action(async () => {
      const { manifestJsonSchema } = await import("../control/model/index.js");
      io.out(JSON.stringify(manifestJsonSchema(), null, 2));
    });

  program
    .command("version")
    .description("print the version")
    .action(() => io.out(`catena ${VERSION}`));

  return program;
}

/** Runs the CLI and returns its exit status (never calls process.exit itself). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync(argv as string[], { from: "user" });
    return ExitCode.Ok;
  } catch (err) {
    if (err instanceof CommanderError) {
      return err.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
    }
    if (err instanceof ExitError) {
      for (const line of err.lines) io.err(line);
      return err.exitCode;
    }
    if (err instanceof UnreachableError) {
      io.err(`error: ${err.message}`);
      return ExitCode.Rejected;
    }
    if (isCatenaError(err)) {
      io.err(`error: ${err.message}`);
      for (const d of err.details) io.err(`  ${d.path ? `${d.path}: ` : ""}${d.message}`);
      return ExitCode.Rejected;
    }
    io.err(`error: ${err instanceof Error ? err.message : String(err)}`);
    return ExitCode.Rejected;
  }
}
