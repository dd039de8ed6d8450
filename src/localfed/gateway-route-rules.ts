// The CEL rules of the HTTPRoute and GRPCRoute CRDs, ported (gateway-cel.ts says how).
import { type CelRule, get, has, list, listRule, type Obj, rule, size } from './gateway-cel.ts';

// ---- routes: parentRefs, rules, backendRefs, filters ------------------------------

const blank = (o: unknown, k: string) => !has(o, k) || get(o, k) === '';
function sameParent(a: unknown, b: unknown): boolean {
  return (
    get(a, 'group') === get(b, 'group') &&
    get(a, 'kind') === get(b, 'kind') &&
    get(a, 'name') === get(b, 'name') &&
    ((blank(a, 'namespace') && blank(b, 'namespace')) ||
      (has(a, 'namespace') && has(b, 'namespace') && get(a, 'namespace') === get(b, 'namespace')))
  );
}
const sameSection = (a: unknown, b: unknown) =>
  (blank(a, 'sectionName') && blank(b, 'sectionName')) ||
  (has(a, 'sectionName') &&
    has(b, 'sectionName') &&
    get(a, 'sectionName') === get(b, 'sectionName'));

const parentRefRules = [
  listRule(
    'spec.parentRefs',
    'sectionName must be specified when parentRefs includes 2 or more references to the same parent',
    (s) =>
      s.every((a) =>
        s.every((b) => !sameParent(a, b) || blank(a, 'sectionName') === blank(b, 'sectionName')),
      ),
  ),
  listRule(
    'spec.parentRefs',
    'sectionName must be unique when parentRefs includes 2 or more references to the same parent',
    (s) => s.every((a) => s.filter((b) => sameParent(a, b) && sameSection(a, b)).length === 1),
  ),
];

const totalMatches = listRule(
  'spec.rules',
  'While 16 rules and 64 matches per rule are allowed, the total number of matches across all rules in a route must be less than 128',
  (s) => s.slice(0, 16).reduce((n: number, r) => n + size(get(r, 'matches')), 0) <= 128,
);

const servicePort = (at: string) =>
  rule(at, 'Must have port for Service reference', (s) =>
    size(s.group) === 0 && s.kind === 'Service' ? has(s, 'port') : true,
  );

/** Which filter field goes with which type, in the CRD's order. */
const HTTP_FILTERS: [string, string][] = [
  ['cors', 'CORS'],
  ['requestHeaderModifier', 'RequestHeaderModifier'],
  ['responseHeaderModifier', 'ResponseHeaderModifier'],
  ['requestMirror', 'RequestMirror'],
  ['requestRedirect', 'RequestRedirect'],
  ['urlRewrite', 'URLRewrite'],
  ['extensionRef', 'ExtensionRef'],
];
const GRPC_FILTERS = HTTP_FILTERS.filter(([f]) =>
  ['requestHeaderModifier', 'responseHeaderModifier', 'requestMirror', 'extensionRef'].includes(f),
);

function filterRules(
  at: string,
  fields: [string, string][],
  once: string[],
  grpc: boolean,
): CelRule[] {
  const out: CelRule[] = [];
  if (!grpc)
    out.push(
      listRule(
        at,
        'May specify either httpRouteFilterRequestRedirect or httpRouteFilterRequestRewrite, but not both',
        (s) =>
          !(
            s.some((f) => get(f, 'type') === 'RequestRedirect') &&
            s.some((f) => get(f, 'type') === 'URLRewrite')
          ),
      ),
    );
  for (const t of once)
    out.push(
      listRule(
        at,
        `${t} filter cannot be repeated`,
        (s) => s.filter((f) => get(f, 'type') === t).length <= 1,
      ),
    );
  for (const [field, type] of fields) {
    out.push(
      rule(
        `${at}[]`,
        `filter.${field} must be nil if the filter.type is not ${type}`,
        (f) => !(has(f, field) && f.type !== type),
      ),
    );
    out.push(
      rule(
        `${at}[]`,
        `filter.${field} must be specified for ${type} filter.type`,
        (f) => !(!has(f, field) && f.type === type),
      ),
    );
  }
  if (!grpc)
    for (const [k, what] of [
      ['allowHeaders', 'methods'],
      ['allowMethods', 'methods'],
      ['allowOrigins', 'origins'],
    ] as const) {
      const name = k[0]?.toUpperCase() + k.slice(1);
      out.push(
        listRule(
          `${at}[].cors.${k}`,
          `${name} cannot contain '*' alongside other ${what}`,
          (s) => !(s.includes('*') && s.length > 1),
        ),
      );
    }
  out.push(
    rule(
      `${at}[].requestMirror`,
      'Only one of percent or fraction may be specified in HTTPRequestMirrorFilter',
      (s) => !(has(s, 'percent') && has(s, 'fraction')),
    ),
    servicePort(`${at}[].requestMirror.backendRef`),
    rule(
      `${at}[].requestMirror.fraction`,
      'numerator must be less than or equal to denominator',
      (s) => (has(s, 'denominator') ? Number(s.numerator) <= Number(s.denominator) : 'denominator'),
    ),
  );
  if (!grpc)
    for (const f of ['requestRedirect', 'urlRewrite'])
      for (const t of ['ReplaceFullPath', 'ReplacePrefixMatch']) {
        const field = t === 'ReplaceFullPath' ? 'replaceFullPath' : 'replacePrefixMatch';
        out.push(
          rule(`${at}[].${f}.path`, `${field} must be specified when type is set to '${t}'`, (s) =>
            s.type === t ? has(s, field) : true,
          ),
          rule(`${at}[].${f}.path`, `type must be '${t}' when ${field} is set`, (s) =>
            has(s, field) ? s.type === t : true,
          ),
        );
      }
  return out;
}

// ---- HTTPRoute -------------------------------------------------------------------------

const prefixRewrite = (f: unknown, kind: string) => {
  const p = get(get(f, kind), 'path');
  return (
    has(get(f, kind), 'path') &&
    get(p, 'type') === 'ReplacePrefixMatch' &&
    has(p, 'replacePrefixMatch')
  );
};
const onePrefixMatch = (r: Obj) => {
  const m = list(r.matches);
  return !(
    size(r.matches) !== 1 ||
    !has(m[0], 'path') ||
    get(get(m[0], 'path'), 'type') !== 'PathPrefix'
  );
};
const PATH_TYPES_MSG = "when type one of ['Exact', 'PathPrefix']";
const VALID_PATH = /^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|[%][0-9a-fA-F]{2})+$/;
const literal = (s: Obj) => s.type === 'Exact' || s.type === 'PathPrefix';
const value = (s: Obj) => String(s.value ?? '');

const pathRules = [
  rule(
    'spec.rules[].matches[].path',
    `value must be an absolute path and start with '/' ${PATH_TYPES_MSG}`,
    (s) => !literal(s) || value(s).startsWith('/'),
  ),
  ...['//', '/./', '/../', '%2f', '%2F', '#'].map((bad) =>
    rule(
      'spec.rules[].matches[].path',
      `must not contain '${bad}' ${PATH_TYPES_MSG}`,
      (s) => !literal(s) || !value(s).includes(bad),
    ),
  ),
  ...['/..', '/.'].map((bad) =>
    rule(
      'spec.rules[].matches[].path',
      `must not end with '${bad}' ${PATH_TYPES_MSG}`,
      (s) => !literal(s) || !value(s).endsWith(bad),
    ),
  ),
  rule(
    'spec.rules[].matches[].path',
    "type must be one of ['Exact', 'PathPrefix', 'RegularExpression']",
    (s) => literal(s) || s.type === 'RegularExpression',
  ),
  rule(
    'spec.rules[].matches[].path',
    `must only contain valid characters (matching ${VALID_PATH.source}) for types ['Exact', 'PathPrefix']`,
    (s) => !literal(s) || VALID_PATH.test(value(s)),
  ),
];

/** A Gateway API Duration (`1h30m`, `500ms`) in milliseconds. */
export function durationMs(d: unknown): number {
  let ms = 0;
  for (const [, n, unit] of String(d).matchAll(/(\d+)(h|ms|m|s)/g))
    ms += Number(n) * (unit === 'h' ? 3_600_000 : unit === 'm' ? 60_000 : unit === 's' ? 1000 : 1);
  return ms;
}

export const HTTP_ROUTE_RULES: CelRule[] = [
  ...parentRefRules,
  totalMatches,
  rule('spec.rules[]', 'RequestRedirect filter must not be used together with backendRefs', (r) =>
    size(r.backendRefs) > 0
      ? !has(r, 'filters') || list(r.filters).every((f) => !has(f, 'requestRedirect'))
      : true,
  ),
  ...(['requestRedirect', 'urlRewrite'] as const).flatMap((kind) => {
    const name = kind === 'requestRedirect' ? 'RequestRedirect' : 'URLRewrite';
    return [
      rule(
        'spec.rules[]',
        `When using ${name} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified`,
        (r) =>
          has(r, 'filters') && list(r.filters).filter((f) => prefixRewrite(f, kind)).length === 1
            ? onePrefixMatch(r)
            : true,
      ),
      rule(
        'spec.rules[]',
        `Within backendRefs, ${kind === 'requestRedirect' ? 'when' : 'When'} using ${name} filter with path.replacePrefixMatch, exactly one PathPrefix match must be specified`,
        (r) =>
          has(r, 'backendRefs') &&
          list(r.backendRefs).filter(
            (b) => list(get(b, 'filters')).filter((f) => prefixRewrite(f, kind)).length === 1,
          ).length === 1
            ? onePrefixMatch(r)
            : true,
      ),
    ];
  }),
  servicePort('spec.rules[].backendRefs[]'),
  ...filterRules(
    'spec.rules[].filters',
    HTTP_FILTERS,
    ['CORS', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'],
    false,
  ),
  ...filterRules(
    'spec.rules[].backendRefs[].filters',
    HTTP_FILTERS,
    ['CORS', 'RequestHeaderModifier', 'ResponseHeaderModifier', 'RequestRedirect', 'URLRewrite'],
    false,
  ),
  ...pathRules,
  rule(
    'spec.rules[].timeouts',
    'backendRequest timeout cannot be longer than request timeout',
    (s) =>
      !(
        has(s, 'request') &&
        has(s, 'backendRequest') &&
        durationMs(s.request) !== 0 &&
        durationMs(s.backendRequest) > durationMs(s.request)
      ),
  ),
];

// ---- GRPCRoute -------------------------------------------------------------------------

const exactOrUnset = (s: Obj) => !has(s, 'type') || s.type === 'Exact';
const GRPC_SERVICE = /^\.?[a-z_][a-z_0-9]*(\.[a-z_][a-z_0-9]*)*$/i;
const GRPC_METHOD = /^[A-Za-z_][A-Za-z_0-9]*$/;

export const GRPC_ROUTE_RULES: CelRule[] = [
  ...parentRefRules,
  totalMatches,
  servicePort('spec.rules[].backendRefs[]'),
  ...filterRules(
    'spec.rules[].filters',
    GRPC_FILTERS,
    ['RequestHeaderModifier', 'ResponseHeaderModifier'],
    true,
  ),
  ...filterRules(
    'spec.rules[].backendRefs[].filters',
    GRPC_FILTERS,
    ['RequestHeaderModifier', 'ResponseHeaderModifier'],
    true,
  ),
  rule(
    'spec.rules[].matches[].method',
    "One or both of 'service' or 'method' must be specified",
    (s) => (has(s, 'type') ? has(s, 'service') || has(s, 'method') : true),
  ),
  rule(
    'spec.rules[].matches[].method',
    'service must only contain valid characters (matching ^(?i)\\.?[a-z_][a-z_0-9]*(\\.[a-z_][a-z_0-9]*)*$)',
    (s) => (exactOrUnset(s) && has(s, 'service') ? GRPC_SERVICE.test(String(s.service)) : true),
  ),
  rule(
    'spec.rules[].matches[].method',
    'method must only contain valid characters (matching ^[A-Za-z_][A-Za-z_0-9]*$)',
    (s) => (exactOrUnset(s) && has(s, 'method') ? GRPC_METHOD.test(String(s.method)) : true),
  ),
];
