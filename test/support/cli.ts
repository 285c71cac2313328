// Runs the real `catena` command as a child process, from the TypeScript sources via tsx.
import { type ChildProcess, spawn } from "node:child_process";
import { fileURLToPath } from "node:url";

export const REPO = fileURLToPath(new URL("../../", import.meta.url));
const SOURCE_MAIN = fileURLToPath(new URL("../../services/cli/main.ts", import.meta.url));
const BUILT_MAIN = fileURLToPath(new URL("../../dist/services/cli/main.js", import.meta.url));
// `npm test` builds first and sets CATENA_TEST_BUILT: the real bin then, without tsx's start-up cost.
const COMMAND = process.env.CATENA_TEST_BUILT ? [BUILT_MAIN] : ["--import", "tsx", SOURCE_MAIN];

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

export function spawnCatena(args: readonly string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [...COMMAND, ...args], {
    cwd: REPO,
    env: { ...process.env, CATENA_LOG_LEVEL: "warn", ...env },
    stdio: ["pipe", "pipe", "pipe"],
  });
}

export function runCatena(
  args: readonly string[],
  options: { env?: Record<string, string>; stdin?: string } = {},
): Promise<CliResult> {
  const child = spawnCatena(args, options.env);
  let stdout = "";
  let stderr = "";
  child.stdout?.on("data", (d: Buffer) => {
    stdout += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin?.end(options.stdin ?? "");
  return new Promise((resolve, reject) => {
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
