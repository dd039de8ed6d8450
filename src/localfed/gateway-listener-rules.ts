// The CEL rules of the Gateway and GatewayClass CRDs, ported (gateway-cel.ts says how).
import { type CelRule, get, has, listRule, type Obj, rule, size } from './gateway-cel.ts';

// ---- Gateway and GatewayClass ------------------------------------------------------------

const HOSTNAME = /^(\*\.)?[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const uniqueAddresses = (type: string) =>
  listRule(
    'spec.addresses',
    `${type === 'IPAddress' ? 'IPAddress' : 'Hostname'} values must be unique`,
    (s) =>
      s.every((a) =>
        get(a, 'type') === type && has(a, 'value')
          ? s.filter(
              (b) =>
                get(b, 'type') === type && has(b, 'value') && get(b, 'value') === get(a, 'value'),
            ).length === 1
          : true,
      ),
  );
const sameHostname = (a: unknown, b: unknown) =>
  has(a, 'hostname') && has(b, 'hostname')
    ? get(a, 'hostname') === get(b, 'hostname')
    : !has(a, 'hostname') && !has(b, 'hostname');

export const GATEWAY_RULES: CelRule[] = [
  uniqueAddresses('IPAddress'),
  uniqueAddresses('Hostname'),
  rule(
    'spec.addresses[]',
    `Hostname value must be empty or contain only valid characters (matching ${HOSTNAME.source})`,
    (s) => (s.type === 'Hostname' ? !has(s, 'value') || HOSTNAME.test(String(s.value)) : true),
  ),
  listRule(
    'spec.listeners',
    "tls must not be specified for protocols ['HTTP', 'TCP', 'UDP']",
    (s) =>
      s.every((l) =>
        ['HTTP', 'TCP', 'UDP'].includes(String(get(l, 'protocol'))) ? !has(l, 'tls') : true,
      ),
  ),
  listRule('spec.listeners', 'tls mode must be Terminate for protocol HTTPS', (s) =>
    s.every((l) => {
      if (get(l, 'protocol') !== 'HTTPS' || !has(l, 'tls')) return true;
      const mode = get(get(l, 'tls'), 'mode');
      return mode === '' || mode === 'Terminate';
    }),
  ),
  listRule('spec.listeners', 'tls mode must be set for protocol TLS', (s) =>
    s.every((l) =>
      get(l, 'protocol') === 'TLS'
        ? has(l, 'tls') && has(get(l, 'tls'), 'mode') && get(get(l, 'tls'), 'mode') !== ''
        : true,
    ),
  ),
  listRule('spec.listeners', "hostname must not be specified for protocols ['TCP', 'UDP']", (s) =>
    s.every((l) =>
      ['TCP', 'UDP'].includes(String(get(l, 'protocol')))
        ? !has(l, 'hostname') || get(l, 'hostname') === ''
        : true,
    ),
  ),
  listRule('spec.listeners', 'Listener name must be unique within the Gateway', (s) =>
    s.every((a) => s.filter((b) => get(a, 'name') === get(b, 'name')).length === 1),
  ),
  listRule(
    'spec.listeners',
    'Combination of port, protocol and hostname must be unique for each listener',
    (s) =>
      s.every(
        (a) =>
          s.filter(
            (b) =>
              get(a, 'port') === get(b, 'port') &&
              get(a, 'protocol') === get(b, 'protocol') &&
              sameHostname(a, b),
          ).length === 1,
      ),
  ),
  rule(
    'spec.listeners[].tls',
    'certificateRefs or options must be specified when mode is Terminate',
    (s) => {
      if (s.mode !== 'Terminate') return true;
      if (!has(s, 'certificateRefs')) return 'certificateRefs';
      if (size(s.certificateRefs) > 0) return true;
      return has(s, 'options') ? size(s.options) > 0 : 'options';
    },
  ),
  listRule(
    'spec.tls.frontend.perPort',
    'Port for TLS configuration must be unique within the Gateway',
    (s) => s.every((a) => s.filter((b) => get(a, 'port') === get(b, 'port')).length === 1),
  ),
  ...infrastructureKeyRules('labels', 'Label'),
  ...infrastructureKeyRules('annotations', 'Annotation'),
];

const METADATA_KEY =
  /^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*\/)?([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]$/;

/** The keys of spec.infrastructure.labels and .annotations, as a label's or annotation's. */
function infrastructureKeyRules(field: string, what: string): CelRule[] {
  const at = `spec.infrastructure.${field}`;
  const keys = (s: Obj) => Object.keys(s);
  return [
    rule(
      at,
      `${what} keys must be in the form of an optional DNS subdomain prefix followed by a required name segment of up to 63 characters.`,
      (s) => keys(s).every((k) => METADATA_KEY.test(k)),
    ),
    rule(
      at,
      `If specified, the ${what.toLowerCase()} key's prefix must be a DNS subdomain not longer than 253 characters in total.`,
      (s) => keys(s).every((k) => (k.split('/')[0] ?? '').length < 253),
    ),
  ];
}

export const GATEWAY_CLASS_RULES: CelRule[] = [
  {
    at: 'spec.controllerName',
    message: 'Value is immutable',
    check: (s, old) => s === old,
    transition: true,
  },
];

/** Every value at `at` in `obj` (and in `old`, where the path has no list items), with its field path. */
