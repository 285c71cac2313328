// The data path's own copy of the Validated shape (structurally the same as xds/validated.ts), so the
// building blocks in functions/ decode config without importing xds/.
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

/** Collects errors while a decoder walks a config; `result` turns them into a Validated. */
export class ErrorList {
  readonly errors: FieldError[] = [];

  add(path: string, message: string): void {
    this.errors.push({ path, message });
  }

  get empty(): boolean {
    return this.errors.length === 0;
  }

  result<T>(value: T): Validated<T> {
    return this.errors.length === 0 ? valid(value) : invalid(this.errors);
  }
}

export function formatFieldErrors(errors: readonly FieldError[]): string {
  return errors.map((e) => (e.path ? `${e.path}: ${e.message}` : e.message)).join("; ");
}
