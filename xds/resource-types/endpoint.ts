import { TYPE_URL } from "../type-urls.js";
import { type ProtoJson, protoResourceType, type ResourceType } from "./resource-type.js";

export interface ClusterLoadAssignmentJson extends ProtoJson {
  cluster_name: string;
}

export const endpointType: ResourceType<ClusterLoadAssignmentJson> =
  protoResourceType<ClusterLoadAssignmentJson>({
    typeUrl: TYPE_URL.endpoint,
    fullState: false,
    nameField: "cluster_name",
  });
