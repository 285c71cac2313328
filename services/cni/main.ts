#!/usr/bin/env node
// catena-cni: the CNI plugin (spec 1.1.0) that allocates from Catena's IPAM and registers containers
// as Workloads. Everything below the process edge lives in skel.ts and plugin.ts.
import { readFileSync } from "node:fs";
import { pluginEnvironment } from "./environment.js";
import { catenaCniPlugin } from "./plugin.js";
import { dispatch } from "./skel.js";

const ABOUT = "catena-cni";

const code = await dispatch(
  catenaCniPlugin({ env: pluginEnvironment((name) => process.env[name]) }),
  {
    getenv: (name) => process.env[name],
    // The runtime writes the whole config and closes stdin; a terminal with nothing piped reads as empty.
    readStdin: async () => (process.stdin.isTTY ? "" : readFileSync(0, "utf8")),
    writeStdout: (text) => process.stdout.write(text),
    writeStderr: (text) => process.stderr.write(text),
  },
  ABOUT,
);
process.exitCode = code;
