// Manifest objects for tests, as an operator writes them (apply takes `{items: [...]}` of these).
export const API_VERSION = "catena.dev/v1alpha1";

export function object(
  kind: string,
  name: string,
  spec: Record<string, unknown>,
  labels?: Record<string, string>,
) {
  return { apiVersion: API_VERSION, kind, metadata: { name, ...(labels && { labels }) }, spec };
}
