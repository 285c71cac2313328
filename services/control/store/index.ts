// The public surface of the store package.
export {
  type EmbeddedStore,
  type EmbeddedStoreOptions,
  openEmbeddedStore,
  type StoreLogger,
} from "./embedded-store.js";
export { isWrongLastSequence, KvCas, openBucket, stateBucketName } from "./kv-cas.js";
export { type KvStore, type KvStoreOptions, openKvStore } from "./kv-store.js";
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
