// Kubernetes label selectors, as allowedRoutes' `from: Selector` reads them against a
// Namespace's labels: every matchLabels pair and every matchExpression must hold.
import type { LabelSelector, LabelSelectorRequirement } from '../watch/gateway-records.ts';

function requirementHolds(
  req: LabelSelectorRequirement,
  labels: Readonly<Record<string, string>>,
): boolean {
  const has = Object.hasOwn(labels, req.key);
  const value = labels[req.key];
  switch (req.operator) {
    case 'In':
      return has && value !== undefined && req.values.includes(value);
    case 'NotIn':
      return !has || value === undefined || !req.values.includes(value);
    case 'Exists':
      return has;
    case 'DoesNotExist':
      return !has;
  }
}

/** Does the selector select an object with these labels? An empty selector selects everything. */
export function selectorMatches(
  selector: LabelSelector,
  labels: Readonly<Record<string, string>>,
): boolean {
  for (const [key, want] of Object.entries(selector.matchLabels)) {
    if (!Object.hasOwn(labels, key) || labels[key] !== want) return false;
  }
  return selector.matchExpressions.every((req) => requirementHolds(req, labels));
}
