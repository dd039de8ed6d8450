// A Gateway's own conditions, from its judged listeners and whether fedgate has an
// address to publish.
import type { GatewayRecord } from '../watch/gateway-records.ts';
import type { JudgedListener } from './listeners.ts';
import { type Condition, condition } from './status.ts';

export function gatewayConditions(
  g: GatewayRecord,
  listeners: readonly JudgedListener[],
  hasAddress: boolean,
): Condition[] {
  const gen = g.generation;
  const acceptedCount = listeners.filter((l) => l.accepted).length;
  const invalid = listeners.filter((l) => !l.accepted).map((l) => l.listener.name);
  const accepted =
    invalid.length === 0 && listeners.length > 0
      ? condition(gen, 'Accepted', true, 'Accepted', 'Gateway accepted')
      : condition(
          gen,
          'Accepted',
          acceptedCount > 0,
          'ListenersNotValid',
          `listener(s) not valid: ${invalid.join(', ') || 'none declared'}`,
        );
  let programmed: Condition;
  if (!hasAddress) {
    programmed = condition(
      gen,
      'Programmed',
      false,
      'AddressNotAssigned',
      'fedgate has no address to publish',
    );
  } else if (listeners.some((l) => l.programmed)) {
    programmed = condition(gen, 'Programmed', true, 'Programmed', 'served by fedgate');
  } else {
    programmed = condition(gen, 'Programmed', false, 'Invalid', 'no listener can be served');
  }
  return [accepted, programmed];
}
