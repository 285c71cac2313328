// apply, delete -f and validate: the commands that read manifests from files.

import { identify } from "../../control/api/apply.js";
import { type CatenaError, ErrorCode, isCatenaError } from "../../control/errors.js";
import { checkReferences, validateResource } from "../../control/model/index.js";
import type { Resource, StoredResource } from "../../control/model/resource.js";
import { objectKey } from "../../control/model/resource.js";
import { findCondition } from "../../control/status/conditions.js";
import type { ApplyResponse } from "../client.js";
import type { CliContext } from "../context.js";
import { ExitCode, ExitError } from "../exit.js";
import { formatSourced, readSources, type Sources } from "../sources.js";

async function load(ctx: CliContext, files: readonly string[]): Promise<Sources> {
  const sources = await readSources(files, ctx.io.stdin);
  if (sources.errors.length > 0) throw new ExitError(ExitCode.Rejected, sources.errors);
  if (sources.documents.length === 0) throw new ExitError(ExitCode.Rejected, ["error: no documents found"]);
  return sources;
}

function rejected(err: CatenaError, sources: Sources): ExitError {
  const lines = err.details.map((d) => formatSourced(d, sources.documents));
  return new ExitError(ExitCode.Rejected, [`error: ${err.message}`, ...lines]);
}

function report(ctx: CliContext, response: ApplyResponse, dryRun: boolean): void {
  for (const { action, object } of response.items) {
    ctx.io.out(`${object.kind.toLowerCase()}/${object.metadata.name} ${action}${dryRun ? " (dry run)" : ""}`);
  }
}

export async function applyCommand(
  ctx: CliContext,
  options: { filename: string[]; dryRun?: boolean; wait?: boolean; timeout: string },
): Promise<void> {
  const sources = await load(ctx, options.filename);
  let response: ApplyResponse;
  try {
    response = await ctx.client().apply(
      sources.documents.map((d) => d.document.value),
      { dryRun: options.dryRun === true },
    );
  } catch (err) {
    if (isCatenaError(err)) throw rejected(err, sources);
    throw err;
  }
  report(ctx, response, options.dryRun === true);
  if (options.wait && !options.dryRun) {
    await waitForReady(
      ctx,
      response.items.map((i) => i.object),
      parseDuration(options.timeout),
    );
  }
}

export async function deleteFromFiles(
  ctx: CliContext,
  options: { filename: string[]; dryRun?: boolean; ignoreNotFound?: boolean },
) {
  const sources = await load(ctx, options.filename);
  try {
    const response = await ctx.client().deleteMany(
      sources.documents.map((d) => d.document.value),
      { dryRun: options.dryRun === true, ignoreNotFound: options.ignoreNotFound === true },
    );
    report(ctx, response, options.dryRun === true);
  } catch (err) {
    if (isCatenaError(err)) throw rejected(err, sources);
    throw err;
  }
}

/**
 * Offline: every document against its schema, and references among the given files. A reference
 * to an object that is not in the files may exist on the server, so it is a note, not an error.
 */
export async function validateCommand(ctx: CliContext, options: { filename: string[] }): Promise<void> {
  const sources = await load(ctx, options.filename);
  const errors: string[] = [];
  const batch: { index: number; resource: Resource }[] = [];
  sources.documents.forEach((d, index) => {
    const result = validateResource(d.document.value);
    if (result.ok) batch.push({ index, resource: result.value });
    else {
      for (const e of result.errors) {
        errors.push(
          formatSourced({ document: index, ...identify(d.document.value), ...e }, sources.documents),
        );
      }
    }
  });
  const inFiles = new Map(
    batch.map((b) => [objectKey(b.resource.kind, b.resource.metadata.name), b.resource]),
  );
  const notes: string[] = [];
  for (const d of checkReferences(batch, (kind, name) => inFiles.get(objectKey(kind, name)))) {
    const line = formatSourced(d, sources.documents);
    if (/does not exist$/.test(d.message))
      notes.push(`note: ${line} (not in these files; the server checks it)`);
    else errors.push(line);
  }
  for (const n of notes) ctx.io.err(n);
  if (errors.length > 0) {
    throw new ExitError(ExitCode.Rejected, [`error: ${errors.length} error(s)`, ...errors]);
  }
  ctx.io.out(`${sources.documents.length} document(s) valid`);
}

async function waitForReady(ctx: CliContext, objects: StoredResource[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  const client = ctx.client();
  let pending = objects;
  let lastLine = "";
  while (pending.length > 0) {
    const still: StoredResource[] = [];
    let blocking = "";
    for (const o of pending) {
      let current: StoredResource;
      try {
        current = await client.get(o.kind, o.metadata.name);
      } catch (err) {
        if (isCatenaError(err, ErrorCode.NotFound)) continue; // deleted meanwhile: nothing to wait for
        throw err;
      }
      const ready = findCondition(current.status?.conditions, "Ready");
      const observed = current.status?.observedGeneration === current.metadata.generation;
      if (!(observed && ready?.status === "True")) {
        still.push(current);
        blocking ||= `${current.kind}/${current.metadata.name}: ${ready ? `${ready.reason}: ${ready.message}` : "no status yet"}`;
      }
    }
    pending = still;
    if (pending.length === 0) break;
    const line = `waiting for ${pending.length}/${objects.length} to be Ready (${blocking})`;
    if (ctx.io.interactive) ctx.io.err(`\r\x1b[2K${line}`);
    else if (line !== lastLine) ctx.io.err(line);
    lastLine = line;
    if (Date.now() > deadline) {
      throw new ExitError(ExitCode.Rejected, [`error: timed out waiting for Ready: ${blocking}`]);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  ctx.io.err(`${ctx.io.interactive ? "\r\x1b[2K" : ""}all ${objects.length} object(s) Ready`);
}

/** `90s`, `2m`, `1500ms`, or plain seconds. */
export function parseDuration(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text.trim());
  if (!match) throw new ExitError(ExitCode.Usage, [`error: bad duration "${text}" (e.g. 30s, 2m, 500ms)`]);
  const n = Number(match[1]);
  return match[2] === "ms" ? n : match[2] === "m" ? n * 60_000 : n * 1000;
}
