// Loads a third-party function (`--plugin MODULE`): a path (relative to the working directory) or a
// package name, whose default export is a defineFunction() result.
import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { type FunctionDefinition, isFunctionDefinition } from "./define-function.js";
import { SDK_ERROR, SdkError } from "./errors.js";

export async function loadPlugin(spec: string, cwd = process.cwd()): Promise<FunctionDefinition<unknown>> {
  const isPath = spec.startsWith(".") || isAbsolute(spec);
  const target = isPath ? pathToFileURL(resolve(cwd, spec)).href : spec;
  let mod: { default?: unknown };
  try {
    mod = (await import(target)) as { default?: unknown };
  } catch (cause) {
    throw new SdkError(SDK_ERROR.badPlugin, `cannot load plugin ${spec}: ${(cause as Error).message}`, {
      cause,
    });
  }
  if (!isFunctionDefinition(mod.default))
    throw new SdkError(
      SDK_ERROR.badPlugin,
      `plugin ${spec}: its default export is not a defineFunction() result`,
    );
  return mod.default;
}
