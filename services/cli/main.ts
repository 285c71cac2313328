#!/usr/bin/env node
// Entry point of the `catena` binary.
import { runCli } from "./cli.js";
import type { CliIo } from "./context.js";

const io: CliIo = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  // Loaded on use: sources.ts brings the manifest parser, which `catena function` does not need.
  stdin: async () => (await import("./sources.js")).readStdin(),
  interactive: process.stderr.isTTY === true,
};
process.exitCode = await runCli(process.argv.slice(2), io);
