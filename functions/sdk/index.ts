// Public surface of functions/sdk's data-path building blocks. The function host (defineFunction,
// listeners, xDS wiring) is assembled from these and will add its own exports here.
export { type Clock, monotonicClock } from "./clock.js";
export { crc32c } from "./crc32c.js";
export { SDK_ERROR, SdkError, type SdkErrorCode } from "./errors.js";
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
