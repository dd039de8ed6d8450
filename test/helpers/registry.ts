// For unit tests of the simulator's registry: a served type by group, version and
// plural, and the ApiError a call throws.
import { findType, type ResourceType } from '../../src/localfed/resources.ts';
import { ApiError } from '../../src/localfed/status.ts';

export function mustType(group: string, version: string, plural: string): ResourceType {
  const t = findType(group, version, plural);
  if (!t) throw new Error(`no type ${group}/${version}/${plural}`);
  return t;
}

export function apiError(fn: () => unknown): ApiError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ApiError) return e;
    throw e;
  }
  throw new Error('expected an ApiError, but nothing was thrown');
}
