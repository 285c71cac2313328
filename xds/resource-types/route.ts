import { TYPE_URL } from "../type-urls.js";
import { type ProtoJson, protoResourceType, type ResourceType } from "./resource-type.js";

export interface RouteConfigurationJson extends ProtoJson {
  name: string;
}

export const routeType: ResourceType<RouteConfigurationJson> = protoResourceType<RouteConfigurationJson>({
  typeUrl: TYPE_URL.route,
  fullState: false,
  nameField: "name",
});
