// The xDS node (envoy.config.core.v3.Node): who is asking. Metadata travels as a Struct, here as JSON.
import { isProtoObject, obj, type ProtoObject, str, strs } from "./wire/proto-object.js";
import { type Json, jsonToStruct, structToJson } from "./wire/struct.js";

export interface Locality {
  region?: string;
  zone?: string;
  subZone?: string;
}

export interface Node {
  id: string;
  cluster: string;
  metadata: { [key: string]: Json };
  locality?: Locality;
  userAgentName?: string;
  userAgentVersion?: string;
  clientFeatures?: string[];
}

/** protobufjs object form, for Type.fromObject. */
export function nodeToProto(node: Node): ProtoObject {
  const out: ProtoObject = { id: node.id, cluster: node.cluster, metadata: jsonToStruct(node.metadata) };
  if (node.locality) {
    out.locality = {
      region: node.locality.region ?? "",
      zone: node.locality.zone ?? "",
      sub_zone: node.locality.subZone ?? "",
    };
  }
  if (node.userAgentName) out.user_agent_name = node.userAgentName;
  if (node.userAgentVersion) out.user_agent_version = node.userAgentVersion;
  if (node.clientFeatures) out.client_features = node.clientFeatures;
  return out;
}

export function nodeFromProto(o: unknown): Node | undefined {
  if (!isProtoObject(o)) return undefined;
  const node: Node = { id: str(o, "id"), cluster: str(o, "cluster"), metadata: structToJson(o.metadata) };
  const loc = obj(o, "locality");
  if (loc)
    node.locality = { region: str(loc, "region"), zone: str(loc, "zone"), subZone: str(loc, "sub_zone") };
  const ua = str(o, "user_agent_name");
  if (ua) node.userAgentName = ua;
  const uav = str(o, "user_agent_version");
  if (uav) node.userAgentVersion = uav;
  const features = strs(o, "client_features");
  if (features.length > 0) node.clientFeatures = features;
  return node;
}
