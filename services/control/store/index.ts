// The public surface of the store package.
export {
  type EmbeddedStore,
  type EmbeddedStoreOptions,
  openEmbeddedStore,
  type StoreLogger,
} from "./embedded-store.js";
export { formatLabelSelector, matchesSelector, parseLabelSelector } from "./label-selector.js";
export type {
  Change,
  ChangeType,
  CommitResult,
  LabelSelector,
  OpAction,
  OpResult,
  Store,
  StoreOp,
  StoreReader,
  Watch,
  WatchOptions,
} from "./store.js";
export { QueuedWatch, type QueuedWatchOptions } from "./watch.js";
