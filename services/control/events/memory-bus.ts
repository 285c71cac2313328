// The in-process bus for `catena up` without NATS: same subjects, same wildcard rules, no history.
import { CatenaError, ErrorCode } from "../errors.js";
import type { BusMessage, BusStatus, BusSubscription, EventBus } from "./bus.js";
import { Channel } from "./channel.js";
import { subjectMatches } from "./subject.js";

const DEFAULT_QUEUE_SIZE = 10_000;

export interface MemoryBus extends EventBus {
  readonly kind: "memory";
}

export function createMemoryBus(): MemoryBus {
  const subscriptions = new Set<{ pattern: string; channel: Channel<BusMessage> }>();
  const statusWatches = new Set<Channel<BusStatus>>();
  const status: BusStatus = { connected: true, detail: "in-process" };
  let closed = false;

  const shutdown = () => {
    if (closed) return;
    closed = true;
    status.connected = false;
    status.detail = "closed";
    for (const s of subscriptions) s.channel.end();
    for (const w of statusWatches) {
      w.push({ ...status });
      w.end();
    }
  };

  return {
    kind: "memory",
    publish(subject, payload, headers) {
      if (closed) return Promise.reject(new CatenaError(ErrorCode.Closed, "event bus is closed"));
      for (const s of subscriptions) {
        if (subjectMatches(s.pattern, subject)) s.channel.push({ subject, data: payload, headers });
      }
      return Promise.resolve();
    },
    subscribe(pattern, options = {}): BusSubscription {
      const entry = {
        pattern,
        channel: new Channel<BusMessage>(options.queueSize ?? DEFAULT_QUEUE_SIZE, () =>
          subscriptions.delete(entry),
        ),
      };
      if (closed) entry.channel.end();
      else subscriptions.add(entry);
      return entry.channel;
    },
    status: () => ({ ...status }),
    statusChanges() {
      const watch = new Channel<BusStatus>(16, () => statusWatches.delete(watch));
      watch.push({ ...status });
      if (closed) watch.end();
      else statusWatches.add(watch);
      return watch;
    },
    close() {
      shutdown();
      return Promise.resolve();
    },
    destroy() {
      shutdown();
      return Promise.resolve();
    },
  };
}
