// Starts a control server in-process for a test: temp data dir, OS-chosen API port, the machine's
// NATS (or the one given) under a unique subject root so runs never see each other's events.
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pino } from "pino";
import {
  type ControlServer,
  type ControlServerOptions,
  startControlServer,
} from "../../services/control/server.js";
import { deleteEventStream, deleteStateBucket, SHARED_NATS_URL, uniqueRoot } from "./nats.js";

export interface TestControl {
  server: ControlServer;
  url: string;
  root: string;
  dataDir: string;
  stop(): Promise<void>;
}

export async function startTestControl(
  options: {
    natsUrl?: string;
    root?: string;
    dataDir?: string;
    xdsAddr?: string;
    /** nats-kv: state in the `<ROOT>_STATE` bucket; replicas started with one root share it. */
    store?: "embedded" | "nats-kv";
    /** Keep the root's bucket and event stream on stop (another replica still uses them). */
    keepNatsState?: boolean;
    /** The mesh CA's options (a short certificate lifetime for rotation tests). */
    ca?: ControlServerOptions["ca"];
  } = {},
) {
  const dataDir = options.dataDir ?? (await mkdtemp(join(tmpdir(), "catena-test-")));
  const root = options.root ?? uniqueRoot();
  const natsUrl = options.natsUrl ?? SHARED_NATS_URL;
  const server = await startControlServer({
    apiAddr: "127.0.0.1:0",
    xdsAddr: options.xdsAddr ?? "127.0.0.1:0",
    dataDir,
    natsUrl,
    natsRoot: root,
    embeddedNats: false,
    ...(options.store && { store: options.store }),
    ...(options.ca && { ca: options.ca }),
    logger: pino({ level: process.env.CATENA_TEST_LOG ?? "silent" }),
  });
  const control: TestControl = {
    server,
    url: server.apiUrl,
    root,
    dataDir,
    async stop() {
      await server.close();
      if (!options.keepNatsState) {
        await deleteEventStream(natsUrl, root).catch(() => undefined);
        if (options.store === "nats-kv") await deleteStateBucket(natsUrl, root).catch(() => undefined);
      }
      if (!options.dataDir) await rm(dataDir, { recursive: true, force: true });
    },
  };
  return control;
}

/** POST a body to the API; JSON unless a string is given (sent as YAML). */
export async function post(
  url: string,
  path: string,
  body: unknown,
): Promise<{ status: number; body: unknown }> {
  const isText = typeof body === "string";
  const res = await fetch(new URL(path, url), {
    method: "POST",
    headers: { "content-type": isText ? "application/yaml" : "application/json" },
    body: isText ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

export async function getJson(url: string, path: string): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL(path, url));
  return { status: res.status, body: await res.json() };
}

/** Waits until the status reconciler has caught up with every object (so the revision rests). */
export async function settled(control: TestControl, timeoutMs = 5000, quietMs = 250): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let quietSince = Date.now();
  let revision = control.server.store.revision();
  for (;;) {
    const all = await control.server.store.list();
    const now = control.server.store.revision();
    if (now !== revision) {
      revision = now;
      quietSince = Date.now();
    }
    // Observed, and no write for a while: data path status (Programmed, Ready) follows a compile later.
    const observed = all.every((o) => o.status?.observedGeneration === o.metadata.generation);
    if (observed && Date.now() - quietSince >= quietMs) return;
    if (Date.now() > deadline) throw new Error("status reconciler did not settle");
    await new Promise((r) => setTimeout(r, 20));
  }
}
