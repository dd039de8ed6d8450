// The checks both header modifier conformance cases share (HTTPRouteRequestHeaderModifier,
// HTTPRouteResponseHeaderModifier: their manifests have the same paths), for any
// harness that can say which headers a request (or its answer) ended up with.
import { expect } from 'vitest';

export type Headers = Record<string, unknown>;

/**
 * The cases both header modifier conformance tests share (/set, /add, /remove,
 * /multiple, /case-insensitivity): `read` gives the headers seen after the filter
 * when `given` were there before it. The /case-insensitivity headers are returned.
 */
export async function modifies(
  read: (path: string, given: Record<string, string>) => Promise<Headers>,
) {
  expect((await read('/set', {}))['x-header-set']).toBe('set-overwrites-values');
  expect((await read('/set', { 'X-Header-Set': 'some-other-value' }))['x-header-set']).toBe(
    'set-overwrites-values',
  );
  expect((await read('/add', {}))['x-header-add']).toBe('add-appends-values');
  expect((await read('/add', { 'X-Header-Add': 'some-other-value' }))['x-header-add']).toBe(
    'some-other-value,add-appends-values',
  );
  expect(await read('/remove', { 'X-Header-Remove': 'val' })).not.toHaveProperty('x-header-remove');
  const multiple = await read('/multiple', {
    'X-Header-Set-2': 'set-val-2',
    'X-Header-Add-2': 'add-val-2',
    'X-Header-Remove-1': 'val',
    'X-Header-Remove-2': 'remove-val-2',
  });
  expect(multiple).toMatchObject({
    'x-header-set-1': 'header-set-1',
    'x-header-set-2': 'header-set-2',
    'x-header-add-1': 'header-add-1',
    'x-header-add-2': 'add-val-2,header-add-2',
    'x-header-add-3': 'header-add-3',
  });
  expect(multiple).not.toHaveProperty('x-header-remove-1');
  expect(multiple).not.toHaveProperty('x-header-remove-2');
  const folded = await read('/case-insensitivity', {
    'x-header-set': 'original-val-set',
    'x-header-add': 'original-val-add',
    'x-header-remove': 'original-val-remove',
  });
  expect(folded).toMatchObject({
    'x-header-set': 'header-set',
    'x-header-add': 'original-val-add,header-add',
  });
  expect(folded).not.toHaveProperty('x-header-remove');
  return folded;
}

/**
 * HTTPRouteResponseHeaderModifier: the shared cases on the answer's headers, the
 * backend setting the headers X-Echo-Set-Header names (the suite's backend does);
 * `send` sends `path` with `headers` and returns the answer's headers.
 */
export async function modifiesAnswers(
  send: (path: string, headers: Record<string, string>) => Promise<Headers>,
) {
  const folded = await modifies((path, set) => {
    const echo = Object.entries(set)
      .map(([k, v]) => `${k}:${v}`)
      .join(',');
    return send(path, echo ? { 'X-Echo-Set-Header': echo } : {});
  });
  expect(folded).toMatchObject({
    'x-lowercase-add': 'lowercase-add',
    'x-mixedcase-add-1': 'mixedcase-add-1',
    'x-mixedcase-add-2': 'mixedcase-add-2',
    'x-uppercase-add': 'uppercase-add',
  });
}
