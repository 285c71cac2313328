// Reads `-f FILE|DIR|-` into manifest documents, remembering where each came from so that
// the server's (document, path) errors can be shown as file:line:column.
import { readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import type { ErrorDetail } from "../control/errors.js";
import {
  formatErrorDetail,
  locateDetail,
  type ManifestDocument,
  parseManifests,
} from "../control/model/index.js";

export interface SourcedDocument {
  file: string;
  document: ManifestDocument;
}

export interface Sources {
  documents: SourcedDocument[];
  /** Parse errors, already located in their file. */
  errors: string[];
}

const MANIFEST_FILE = /\.(ya?ml|json)$/i;

export async function readSources(paths: readonly string[], stdin: () => Promise<string>): Promise<Sources> {
  const files: { name: string; text: string }[] = [];
  for (const path of paths) {
    if (path === "-") {
      files.push({ name: "<stdin>", text: await stdin() });
      continue;
    }
    const info = await stat(path);
    if (info.isDirectory()) {
      const entries = (await readdir(path)).filter((e) => MANIFEST_FILE.test(e)).sort();
      for (const entry of entries)
        files.push({ name: join(path, entry), text: await readFile(join(path, entry), "utf8") });
    } else {
      files.push({ name: path, text: await readFile(path, "utf8") });
    }
  }
  const documents: SourcedDocument[] = [];
  const errors: string[] = [];
  for (const file of files) {
    const parsed = parseManifests(file.text);
    for (const e of parsed.errors) errors.push(formatErrorDetail(e, file.name));
    for (const document of parsed.documents) documents.push({ file: file.name, document });
  }
  return { documents, errors };
}

/** `chain.yaml:14:9 ServiceChain/web-edge spec.hops[1].function: ...` for a detail of the request. */
export function formatSourced(detail: ErrorDetail, sources: readonly SourcedDocument[]): string {
  const origin = detail.document === undefined ? undefined : sources[detail.document];
  if (!origin) return formatErrorDetail(detail);
  return formatErrorDetail(locateDetail(origin.document, detail), origin.file);
}

export async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}
