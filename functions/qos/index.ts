// Public surface of the QoS building blocks.
export {
  BucketThrottle,
  ByteBudget,
  type ByteRate,
  ByteShaper,
  type ByteShaperOptions,
  byteBudget,
  type ShapedPair,
  shapeDuplexPair,
} from "./byte-shaper.js";
export { ConnectionLimiter, type ConnectionLimitOptions } from "./connection-limiter.js";
export {
  type ConnectionRate,
  decodeConnectionLimit,
  decodeLocalRateLimit,
  decodeQosConfig,
  type QosConfig,
} from "./qos-config.js";
export { TokenBucket, type TokenBucketOptions } from "./token-bucket.js";
