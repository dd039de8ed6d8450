// An endpoint's state as the fedgate_endpoints gauge and the /debug views count it:
// what its cluster says first (terminating, not ready), then what fedgate's health
// checks found of a ready one (ejected, check failing).
import type { Endpoint } from '../catalog/model.ts';
import type { EndpointHealth } from '../routing/types.ts';

export const ENDPOINT_STATES = [
  'ready',
  'not-ready',
  'terminating',
  'ejected',
  'check-failing',
] as const;
export type EndpointState = (typeof ENDPOINT_STATES)[number];

/** The state of `e`, given its health verdict (none: nothing found against it). */
export function endpointState(e: Endpoint, h: EndpointHealth | undefined): EndpointState {
  const c = e.conditions;
  if (c.terminating) return 'terminating';
  if (!c.ready) return 'not-ready';
  if (h?.ejectedUntil !== undefined) return 'ejected';
  if (h?.check === 'unhealthy') return 'check-failing';
  return 'ready';
}
