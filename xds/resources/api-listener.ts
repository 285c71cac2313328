// The Listener a proxyless gRPC client resolves for xds:///<name>: an api_listener holding an
// HttpConnectionManager that fetches its routes over RDS and ends in the router filter.
import { encodeResource, type Resource } from "../resource.js";
import { FILTER_NAME, TYPE_URL } from "../type-urls.js";
import { adsConfigSource, typedConfig } from "./typed-config.js";

export interface ApiListenerInput {
  /** The name clients dial, e.g. "web" for xds:///web. */
  name: string;
  routeConfigName: string;
  statPrefix?: string;
}

export function apiListener(input: ApiListenerInput): Resource {
  const hcm = typedConfig(TYPE_URL.httpConnectionManager, {
    stat_prefix: input.statPrefix ?? input.name,
    rds: { route_config_name: input.routeConfigName, config_source: adsConfigSource() },
    http_filters: [{ name: FILTER_NAME.router, typed_config: typedConfig(TYPE_URL.router) }],
  });
  return encodeResource(TYPE_URL.listener, input.name, {
    name: input.name,
    api_listener: { api_listener: hcm },
  });
}
