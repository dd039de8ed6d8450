// The requests and expectations of Gateway API conformance cases (v1.6.3 tests/*.go)
// that more than one harness runs: the proxy-level ports
// (test/gateway-conformance-proxy.test.ts) and the end-to-end ones
// (test/gateway-e2e-extended.test.ts).

/** How a case's request differs from a plain GET. */
export interface CaseRequest {
  method?: string;
  headers?: Record<string, string>;
}

/** A request and what answers it: the backend (v1, v2, v3) or the status. */
export type RequestCase = readonly [path: string, want: string, request?: CaseRequest];

const m = (method: string, headers?: Record<string, string>): CaseRequest => ({
  method,
  ...(headers ? { headers } : {}),
});
const v = (version: string): CaseRequest => ({ headers: { version } });

/** HTTPRouteMethodMatching (httproute-method-matching.yaml). */
export const METHOD_MATCHING: readonly RequestCase[] = [
  ['/', 'v1', m('POST')],
  ['/', 'v2', m('GET')],
  ['/', '404', m('HEAD')],
  ['/path1', 'v1', m('GET')],
  ['/', 'v2', m('PUT', { version: 'one' })],
  ['/path2', 'v3', m('POST', { version: 'two' })],
  ['/path3', 'v1', m('PATCH')],
  ['/path4', 'v1', m('DELETE', { version: 'three' })],
  ['/', '404', m('PUT')],
  ['/path4', '404', m('DELETE')],
  ['/path5', 'v1', m('PATCH')],
  ['/', 'v2', m('PATCH', { version: 'four' })],
];

/** HTTPRouteQueryParamMatching (httproute-query-param-matching.yaml). */
export const QUERY_PARAM_MATCHING: readonly RequestCase[] = [
  ['/?animal=whale', 'v1'],
  ['/?animal=dolphin', 'v2'],
  ['/?animal=dolphin&color=blue', 'v3'],
  ['/?ANIMAL=Whale', 'v3'],
  ['/?animal=whale&otherparam=irrelevant', 'v1'],
  ['/?animal=dolphin&color=yellow', 'v2'],
  ['/?color=blue', '404'],
  ['/?animal=dog', '404'],
  ['/?animal=whaledolphin', '404'],
  ['/', '404'],
  ['/path1?animal=whale', 'v1'],
  ['/?animal=whale', 'v2', v('one')],
  ['/path2?animal=whale', 'v3', v('two')],
  ['/path3?animal=shark', 'v1'],
  ['/path4?animal=kraken', 'v1', v('three')],
  ['/?animal=shark', '404'],
  ['/path4?animal=kraken', '404'],
  ['/path5?animal=hydra', 'v1'],
  ['/?animal=hydra', 'v3', v('four')],
];

/** HTTPRouteRewritePath (httproute-rewrite-path.yaml): the path asked, the path the backend sees. */
export const REWRITE_PATH: readonly (readonly [path: string, seen: string])[] = [
  ['/prefix/one/two', '/one/two'],
  ['/strip-prefix/three', '/three'],
  ['/strip-prefix', '/'],
  ['/full/one/two', '/one'],
  ['/prefix/rewrite-path-and-modify-headers/one', '/prefix/one'],
];

/** HTTPRouteRewritePath's last request: the path rewritten and the headers modified. */
export const REWRITE_PATH_AND_HEADERS = {
  path: '/full/rewrite-path-and-modify-headers/test',
  headers: {
    'X-Header-Remove': 'remove-val',
    'X-Header-Add-Append': 'append-val-1',
    'X-Header-Set': 'set-val',
  },
  seenPath: '/test',
  seenHeaders: {
    'x-header-add': 'header-val-1',
    'x-header-add-append': 'append-val-1,header-val-2',
    'x-header-set': 'set-overwrites-values',
  },
  absent: 'x-header-remove',
} as const;

/** Where a redirect must point (the parts a case names), as the suite's roundtripper reads Location. */
export interface RedirectWant {
  status: number;
  scheme?: string;
  host?: string;
  port?: string;
  path?: string;
}

/** HTTPRouteRedirectPath (httproute-redirect-path.yaml). */
export const REDIRECT_PATH: readonly (readonly [path: string, want: RedirectWant])[] = [
  ['/original-prefix/lemon', { status: 302, path: '/replacement-prefix/lemon' }],
  ['/full/path/original', { status: 302, path: '/full-path-replacement' }],
  ['/path-and-host', { status: 302, host: 'example.org', path: '/replacement-prefix' }],
  ['/path-and-status', { status: 301, path: '/replacement-prefix' }],
  ['/full-path-and-host', { status: 302, host: 'example.org', path: '/replacement-full' }],
  ['/full-path-and-status', { status: 301, path: '/replacement-full' }],
];
