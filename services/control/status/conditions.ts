// Kubernetes-style conditions: lastTransitionTime moves only when the status value changes.
import type { Condition, ConditionStatus } from "../model/resource.js";

export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
}

export function setCondition(
  conditions: readonly Condition[],
  update: ConditionUpdate,
  now: Date,
): Condition[] {
  const previous = conditions.find((c) => c.type === update.type);
  const next: Condition = {
    ...update,
    lastTransitionTime:
      previous && previous.status === update.status ? previous.lastTransitionTime : now.toISOString(),
  };
  // In place, so an unchanged condition leaves the list (and so the stored status) deep-equal.
  return previous ? conditions.map((c) => (c === previous ? next : c)) : [...conditions, next];
}

export function findCondition(
  conditions: readonly Condition[] | undefined,
  type: string,
): Condition | undefined {
  return conditions?.find((c) => c.type === type);
}
