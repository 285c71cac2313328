import { TYPE_URL } from "../type-urls.js";
import { obj, type ProtoObject, str } from "../wire/proto-object.js";
import { type ProtoJson, protoResourceType, type ResourceType } from "./resource-type.js";

export interface ClusterJson extends ProtoJson {
  name: string;
}

export const clusterType: ResourceType<ClusterJson> = protoResourceType<ClusterJson>({
  typeUrl: TYPE_URL.cluster,
  fullState: true,
  nameField: "name",
});

/** The ClusterLoadAssignment name an EDS cluster waits for; undefined for other discovery types. */
export function clusterEdsName(cluster: ProtoJson): string | undefined {
  const c = cluster as ProtoObject;
  if (str(c, "type") !== "EDS") return undefined;
  const eds = obj(c, "eds_cluster_config");
  return (eds && str(eds, "service_name")) || str(c, "name");
}
