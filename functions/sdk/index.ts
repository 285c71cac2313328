// Public surface of functions/sdk: the plugin contract (defineFunction, NetworkFilter, HostHelper), the
// function host, and the data-path building blocks it is assembled from.

export { type Clock, monotonicClock } from "./clock.js";
export { crc32c } from "./crc32c.js";
export {
  ACCEPT,
  type Accept,
  accept,
  type Connection,
  type ConnectionStats,
  type Deny,
  defineFunction,
  deny,
  type FunctionDefinition,
  FunctionRegistry,
  type FunctionSpec,
  type HelperScope,
  type HostHelper,
  isFunctionDefinition,
  type MetricCounter,
  type NetworkFilter,
  type PluginEvent,
  type PluginMetrics,
  type StreamWrap,
  type Verdict,
} from "./define-function.js";
export { FUNCTION_DEFAULTS, type FunctionEnvironment, readFunctionEnvironment } from "./environment.js";
export { SDK_ERROR, SdkError, type SdkErrorCode } from "./errors.js";
export {
  CLOUDEVENTS_CONTENT_TYPE,
  EventRateLimiter,
  type EventSink,
  type HostEvent,
  MemoryEventSink,
  NatsEventSink,
} from "./events.js";
export { FunctionHost, startFunctionHost } from "./host.js";
export {
  formatIp,
  formatIpv4,
  formatIpv6,
  type IpAddress,
  parseIp,
  parseIpv4,
  parseIpv6Into,
  unmapIpv4,
} from "./ip-address.js";
export { type Lease, LeaseCounter } from "./lease-counter.js";
export { type FunctionHostInit, type FunctionHostOptions, functionHostOptions } from "./options.js";
export { loadPlugin } from "./plugin-loader.js";
export { durationMs, isObject, type Json, wrappedValue } from "./proto-json.js";
export { type ReadProxyHeaderOptions, readProxyHeader } from "./proxy-header-reader.js";
export {
  decodeProxyHeader,
  encodeProxyHeader,
  PP2_TYPE,
  PROXY_PARSE_ERROR,
  PROXY_V2_MAX_HEADER_LENGTH,
  PROXY_V2_SIGNATURE,
  type ProxyCommand,
  type ProxyEndpoint,
  type ProxyHeader,
  ProxyHeaderParser,
  type ProxyParseErrorReason,
  type ProxyParseResult,
  type ProxyProtocol,
  type ProxyTlv,
  proxyHeaderBuffer,
  proxyHeaderLength,
  tcpProxyHeader,
} from "./proxy-protocol.js";
export { Pump, type PumpOptions, type Throttle } from "./pump.js";
export {
  connectUpstream,
  type RelayOptions,
  type RelayStats,
  relay,
  TcpRelay,
  type UpstreamAddress,
} from "./tcp-relay.js";
export {
  ErrorList,
  type FieldError,
  formatFieldErrors,
  invalid,
  type Validated,
  valid,
} from "./validated.js";
