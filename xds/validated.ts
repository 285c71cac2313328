// Validation collects every problem with its field path; decoding returns these instead of throwing.
export interface FieldError {
  path: string;
  message: string;
}

export type Validated<T> = { ok: true; value: T } | { ok: false; errors: FieldError[] };

export function valid<T>(value: T): Validated<T> {
  return { ok: true, value };
}

export function invalid<T>(errors: FieldError[]): Validated<T> {
  return { ok: false, errors };
}

/** "a.b: must be set; c: too long": the form NACK error_detail messages carry. */
export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ");
}

/** Prefixes every path, for errors found inside a nested value. */
export function nestErrors(prefix: string, errors: readonly FieldError[]): FieldError[] {
  return errors.map((e) => ({ path: e.path ? `${prefix}.${e.path}` : prefix, message: e.message }));
}
