// Public API of the event bus: CloudEvents on `<root>.events.>`, kept in JetStream `<ROOT>_EVENTS`.
export type { BusMessage, BusStatus, BusSubscription, EventBus } from "./bus.js";
export type { BoundedWatch } from "./channel.js";
export { CLOUDEVENTS_CONTENT_TYPE, eventType, toCloudEvent } from "./cloudevent.js";
export {
  type ConnectEventBusOptions,
  connectEventBus,
  type EventBusConnection,
  type EventBusMode,
} from "./connect.js";
export { type EventsLogger, silentLogger } from "./logger.js";
export { createMemoryBus, type MemoryBus } from "./memory-bus.js";
export {
  createNatsBus,
  type NatsBus,
  type NatsBusCounters,
  type NatsBusInit,
  type NatsBusOptions,
  natsBusOptions,
} from "./nats-bus.js";
export {
  findExecutable,
  freePort,
  type NatsServerProcess,
  type NatsServerProcessOptions,
  probeNats,
  startNatsServerProcess,
} from "./nats-server-process.js";
export {
  createEventPublisher,
  type EventFilter,
  type EventPublisher,
  type EventPublisherInit,
  type EventPublisherOptions,
  eventPublisherOptions,
  type PublisherStats,
} from "./publisher.js";
export {
  checkRoot,
  DEFAULT_ROOT,
  eventPattern,
  eventSubject,
  eventsWildcard,
  streamName,
  subjectMatches,
  subjectToken,
} from "./subject.js";
export type { CatenaEvent, CloudEvent, EventSink } from "./types.js";
