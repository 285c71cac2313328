import { SnapshotCache, type SnapshotCacheOptions } from "../../../xds/cache/snapshot-cache.js";
import { AdsServer, type AdsServerOptions } from "../../../xds/server/ads-server.js";

export interface TestServer {
  cache: SnapshotCache;
  server: AdsServer;
  port: number;
  close(): Promise<void>;
}

/** An AdsServer on a port from the OS, publishing snapshots at once unless told otherwise. */
export async function startTestServer(
  opts: { cache?: Partial<SnapshotCacheOptions>; server?: Partial<Omit<AdsServerOptions, "cache">> } = {},
): Promise<TestServer> {
  const cache = new SnapshotCache({ debounceMs: 0, ...opts.cache });
  const server = new AdsServer({ ...opts.server, cache });
  const port = await server.listen("127.0.0.1:0");
  return {
    cache,
    server,
    port,
    close: async () => {
      cache.close();
      await server.close();
    },
  };
}
