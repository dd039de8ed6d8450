// The error of a local federation action that cannot be done as asked.
import { FedgateError } from '../errors.ts';

/** An action that cannot be done as asked: the control API's 400, `localfed ctl`'s exit 2. */
export class ActionError extends FedgateError {
  constructor(message: string) {
    super('ACTION_INVALID', message);
    this.name = 'ActionError';
  }
}
