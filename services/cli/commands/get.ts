// get, describe and delete KIND NAME: commands that address objects by kind and name.
import Table from "cli-table3";
import { stringify } from "yaml";
import { ErrorCode, isCatenaError } from "../../control/errors.js";
import type { CliContext } from "../context.js";
import { kindArg } from "../context.js";
import { ExitCode, ExitError, usage } from "../exit.js";
import { age, OUTPUT_FORMATS, type OutputFormat, renderObject, renderObjects } from "../output.js";

function outputFormat(text: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(text)) return text as OutputFormat;
  throw usage(`unknown output format "${text}" (one of ${OUTPUT_FORMATS.join(", ")})`);
}

function notFound(err: unknown): never {
  if (isCatenaError(err, ErrorCode.NotFound))
    throw new ExitError(ExitCode.Rejected, [`error: ${err.message}`]);
  throw err;
}

export async function getCommand(
  ctx: CliContext,
  kindText: string,
  name: string | undefined,
  options: { output: string; selector?: string },
): Promise<void> {
  const kind = kindArg(kindText);
  const format = outputFormat(options.output);
  const client = ctx.client();
  if (name) {
    const object = await client.get(kind, name).catch(notFound);
    ctx.io.out(renderObject(object, format));
    return;
  }
  ctx.io.out(renderObjects(kind, await client.list(kind, options.selector), format));
}

export async function describeCommand(ctx: CliContext, kindText: string, name: string): Promise<void> {
  const kind = kindArg(kindText);
  const client = ctx.client();
  const object = await client.get(kind, name).catch(notFound);
  const { metadata } = object;
  const lines = [
    `Name:              ${metadata.name}`,
    `Kind:              ${object.kind}`,
    `Labels:            ${
      Object.entries(metadata.labels ?? {})
        .map(([k, v]) => `${k}=${v}`)
        .join(", ") || "<none>"
    }`,
    `Created:           ${metadata.creationTimestamp} (${age(metadata.creationTimestamp)} ago)`,
    `Generation:        ${metadata.generation} (observed ${object.status?.observedGeneration ?? "-"})`,
    `Resource version:  ${metadata.resourceVersion}`,
    "Spec:",
    indent(stringify(object.spec).trimEnd()),
  ];
  const { conditions, observedGeneration: _, ...rest } = object.status ?? {};
  if (Object.keys(rest).length > 0) lines.push("Status:", indent(stringify(rest).trimEnd()));
  lines.push("Conditions:");
  if (conditions && conditions.length > 0) {
    const table = new Table({ head: ["TYPE", "STATUS", "REASON", "MESSAGE", "SINCE"], style: { head: [] } });
    for (const c of conditions)
      table.push([c.type, c.status, c.reason, c.message, age(c.lastTransitionTime)]);
    lines.push(indent(table.toString()));
  } else lines.push("  <none>");
  const events = await client.recentEvents({ kind: kind.toLowerCase(), name }, 10);
  lines.push("Events:");
  if (events.length === 0) lines.push("  <none>");
  for (const e of events) lines.push(`  ${e.time}  ${e.type}`);
  ctx.io.out(lines.join("\n"));
}

export async function deleteByName(ctx: CliContext, kindText: string, name: string): Promise<void> {
  const kind = kindArg(kindText);
  try {
    await ctx.client().deleteOne(kind, name);
  } catch (err) {
    if (isCatenaError(err)) {
      throw new ExitError(ExitCode.Rejected, [
        `error: ${err.message}`,
        ...err.details.map((d) => `  ${d.message}`),
      ]);
    }
    throw err;
  }
  ctx.io.out(`${kind.toLowerCase()}/${name} deleted`);
}

function indent(text: string): string {
  return text
    .split("\n")
    .map((l) => `  ${l}`)
    .join("\n");
}
