#!/usr/bin/env node
// Entry point of the `catena` binary.
import { runCli } from "./cli.js";
import type { CliIo } from "./context.js";
import { readStdin } from "./sources.js";

const io: CliIo = {
  out: (s) => process.stdout.write(`${s}\n`),
  err: (s) => process.stderr.write(`${s}\n`),
  stdin: readStdin,
  interactive: process.stderr.isTTY === true,
};
process.exitCode = await runCli(process.argv.slice(2), io);
