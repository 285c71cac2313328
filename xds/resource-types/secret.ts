import { TYPE_URL } from "../type-urls.js";
import { type ProtoJson, protoResourceType, type ResourceType } from "./resource-type.js";

export interface SecretJson extends ProtoJson {
  name: string;
}

export const secretType: ResourceType<SecretJson> = protoResourceType<SecretJson>({
  typeUrl: TYPE_URL.secret,
  fullState: false,
  nameField: "name",
});
