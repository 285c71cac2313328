import { TYPE_URL } from "../type-urls.js";
import { isProtoObject, obj, objs, type ProtoObject, str } from "../wire/proto-object.js";
import { type ProtoJson, protoResourceType, type ResourceType } from "./resource-type.js";

export interface ListenerJson extends ProtoJson {
  name: string;
}

export const listenerType: ResourceType<ListenerJson> = protoResourceType<ListenerJson>({
  typeUrl: TYPE_URL.listener,
  fullState: true,
  nameField: "name",
});

/** RouteConfiguration names a listener's HttpConnectionManagers fetch over RDS. */
export function listenerRouteNames(listener: ProtoJson): string[] {
  const names: string[] = [];
  const visit = (cfg: unknown): void => {
    if (!isProtoObject(cfg) || cfg["@type"] !== TYPE_URL.httpConnectionManager) return;
    const rds = obj(cfg, "rds");
    const name = rds ? str(rds, "route_config_name") : "";
    if (name) names.push(name);
  };
  const l = listener as ProtoObject;
  const api = obj(l, "api_listener");
  if (api) visit(api.api_listener);
  for (const chain of [
    ...objs(l, "filter_chains"),
    ...(obj(l, "default_filter_chain") ? [obj(l, "default_filter_chain")] : []),
  ]) {
    if (!chain) continue;
    for (const filter of objs(chain, "filters")) visit(filter.typed_config);
  }
  return names;
}
