// One ajv instance for the model: collects every error (allErrors) and keeps the failing schema
// (verbose) so messages can use the schemas' own annotations.
import type { TSchema } from "@sinclair/typebox";
import { Ajv, type ValidateFunction } from "ajv";
import type { PathSegment } from "./field-path.js";
import type { FieldError } from "./resource.js";
import { schemaErrorsToFieldErrors } from "./schema-errors.js";

/** Annotation keywords our schemas carry for editors (see common-schemas.ts); no validation effect. */
export const ANNOTATION_KEYWORDS = ["patternErrorMessage", "errorMessage"] as const;

/** A fresh ajv configured like the model's: strict, every error, annotation keywords known. */
export function createAjv(): Ajv {
  const ajv = new Ajv({ allErrors: true, verbose: true, strict: true, allowUnionTypes: true });
  for (const keyword of ANNOTATION_KEYWORDS) ajv.addKeyword({ keyword, schemaType: "string" });
  return ajv;
}

let shared: Ajv | undefined;
const compiled = new WeakMap<object, ValidateFunction>();

/** A schema validator returning FieldErrors whose paths start with `prefix`. */
export type SchemaCheck = (data: unknown, prefix?: readonly PathSegment[]) => FieldError[];

export function schemaCheck(schema: TSchema): SchemaCheck {
  let validate = compiled.get(schema);
  return (data, prefix = []) => {
    if (!validate) {
      shared ??= createAjv();
      validate = shared.compile(schema);
      compiled.set(schema, validate);
    }
    if (validate(data)) return [];
    return schemaErrorsToFieldErrors(validate.errors ?? [], data, prefix);
  };
}
