// The scenario file: which clusters, zones, nodes, services and replicas the local
// federation runs. Validated with zod; every error names its path.
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { z } from 'zod';
import { FedgateError } from '../errors.ts';
import { GATEWAY_API_CHANNELS } from './gateway-schema.ts';
import type { PortServing } from './pod-info.ts';

const dnsLabel = z
  .string()
  .regex(
    /^[a-z]([-a-z0-9]*[a-z0-9])?$/,
    'must be a DNS label: lower case letters, digits and -, starting with a letter',
  )
  .max(63);

const port = z.number().int().min(1).max(65535);

const zoneSchema = z.strictObject({
  name: dnsLabel,
  nodes: z.number().int().min(1).max(50).default(2),
});

const clusterSchema = z.strictObject({
  name: dnsLabel,
  region: dnsLabel,
  zones: z.array(zoneSchema).min(1),
  /** False: the cluster has no MCS CRDs; exported services carry fedgate.io/federate instead. */
  serviceExportCRD: z.boolean().default(true),
});

const servicePortSchema = z.strictObject({
  name: dnsLabel,
  port,
  targetPort: port.optional(),
  protocol: z.enum(['TCP']).default('TCP'),
  appProtocol: z.string().optional(),
  /**
   * TLS on the pods' target port: none, server (the cluster's CA signs the pod's
   * certificate) or mutual (a client certificate from the clients' CA is required).
   * Default: server when appProtocol is https, else none.
   */
  tls: z.enum(['none', 'server', 'mutual']).optional(),
  /**
   * What the pods serve on the target port: the HTTP answers or the gRPC echo services
   * (fedgate's and the Gateway API conformance suite's). Default: grpc when appProtocol
   * is grpc, else http; grpc under another appProtocol (`kubernetes.io/h2c`, as the
   * conformance Services say) keeps the Service as written.
   */
  serves: z.enum(['http', 'grpc']).optional(),
});

const serviceSchema = z.strictObject({
  name: dnsLabel,
  namespace: dnsLabel,
  ports: z.array(servicePortSchema).min(1),
  headless: z.boolean().default(false),
  /** Clusters the service is deployed in. */
  clusters: z.array(dnsLabel).min(1),
  /** ServiceExport created in every cluster it is deployed in (false: in none). */
  exported: z.boolean().default(true),
  /** A load balancer per cluster: status.loadBalancer.ingress gets a real, listening address. */
  loadBalancer: z.boolean().default(false),
  replicasPerZone: z.number().int().min(0).max(200).default(2),
  /** Overrides per "cluster/zone". */
  replicas: z.record(z.string(), z.number().int().min(0).max(200)).default({}),
  labels: z.record(z.string(), z.string()).default({}),
  annotations: z.record(z.string(), z.string()).default({}),
});

/** Any object the member's API serves, applied as written (kubectl apply's shape). */
const objectSchema = z.looseObject({
  apiVersion: z.string().min(1),
  kind: z.string().min(1),
  metadata: z.looseObject({ name: z.string().min(1), namespace: dnsLabel.optional() }),
});

export const scenarioSchema = z
  .strictObject({
    federation: z.strictObject({ name: dnsLabel, domain: z.string().min(1) }),
    clusters: z.array(clusterSchema).min(1).max(40),
    services: z.array(serviceSchema).default([]),
    /**
     * Objects applied to a cluster once its services are up, in order, as `kubectl
     * apply` would (e.g. Gateway API routes in the config cluster), by cluster name.
     */
    objects: z.record(dnsLabel, z.array(objectSchema)).default({}),
    /** Seconds a scaled-down pod stays terminating (serving, not ready) before it goes. */
    terminationGraceSeconds: z.number().min(0).max(300).default(2),
    /**
     * The Gateway API CRDs every member serves: the standard channel, or the
     * experimental one (more fields, e.g. HTTPRoute rules' `retry`, and more kinds).
     */
    gatewayAPIChannel: z.enum(GATEWAY_API_CHANNELS).default('standard'),
  })
  .superRefine((s, ctx) => {
    const clusters = new Map(s.clusters.map((c) => [c.name, c]));
    for (const name of Object.keys(s.objects)) {
      if (!clusters.has(name))
        ctx.addIssue({
          code: 'custom',
          path: ['objects', name],
          message: `unknown cluster "${name}"`,
        });
    }
    if (clusters.size !== s.clusters.length)
      ctx.addIssue({ code: 'custom', path: ['clusters'], message: 'cluster names must be unique' });
    s.clusters.forEach((c, i) => {
      const zones = new Set(c.zones.map((z) => z.name));
      if (zones.size !== c.zones.length)
        ctx.addIssue({
          code: 'custom',
          path: ['clusters', i, 'zones'],
          message: 'zone names must be unique within a cluster',
        });
    });
    const seen = new Set<string>();
    s.services.forEach((svc, i) => {
      const id = `${svc.namespace}/${svc.name}`;
      if (seen.has(id))
        ctx.addIssue({
          code: 'custom',
          path: ['services', i],
          message: `service ${id} is listed twice`,
        });
      seen.add(id);
      svc.clusters.forEach((name, j) => {
        if (!clusters.has(name))
          ctx.addIssue({
            code: 'custom',
            path: ['services', i, 'clusters', j],
            message: `unknown cluster "${name}"`,
          });
      });
      for (const key of Object.keys(svc.replicas)) {
        const [cl, zone] = key.split('/');
        const c = clusters.get(cl ?? '');
        if (!c?.zones.some((z) => z.name === zone) || !svc.clusters.includes(c.name)) {
          ctx.addIssue({
            code: 'custom',
            path: ['services', i, 'replicas', key],
            message: 'must name "cluster/zone" of a cluster the service is deployed in',
          });
        }
      }
      const names = new Set(svc.ports.map((p) => p.name));
      if (names.size !== svc.ports.length)
        ctx.addIssue({
          code: 'custom',
          path: ['services', i, 'ports'],
          message: 'port names must be unique',
        });
    });
  });

export type Scenario = z.output<typeof scenarioSchema>;
export type ScenarioCluster = Scenario['clusters'][number];
export type ScenarioService = Scenario['services'][number];

export class ScenarioError extends FedgateError {
  constructor(message: string) {
    super('SCENARIO_INVALID', message);
    this.name = 'ScenarioError';
  }
}

export const DEFAULT_SCENARIO_PATH = fileURLToPath(
  new URL('./scenarios/default.yaml', import.meta.url),
);

/** Parses and validates scenario YAML; errors read `services[1].clusters[0]: unknown cluster "x"`. */
export function parseScenario(text: string, source = 'scenario'): Scenario {
  let raw: unknown;
  try {
    raw = parse(text);
  } catch (e) {
    throw new ScenarioError(`${source}: not valid YAML: ${(e as Error).message}`);
  }
  const result = scenarioSchema.safeParse(raw);
  if (!result.success) {
    const lines = result.error.issues.map(
      (i) => `${source}: ${formatPath(i.path) || '(root)'}: ${i.message}`,
    );
    throw new ScenarioError(lines.join('\n'));
  }
  return result.data;
}

export async function loadScenario(path = DEFAULT_SCENARIO_PATH): Promise<Scenario> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new ScenarioError(
      `${path}: cannot read: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
    );
  }
  return parseScenario(text, path);
}

function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) out += typeof p === 'number' ? `[${p}]` : out ? `.${String(p)}` : String(p);
  return out;
}

/** What the pods serve on a Service port: `serves`, else gRPC for appProtocol grpc, else HTTP; TLS as above. */
export function portServing(port: ScenarioService['ports'][number]): PortServing {
  const app = port.appProtocol?.toLowerCase();
  return {
    protocol: port.serves ?? (app === 'grpc' ? 'grpc' : 'http'),
    tls: port.tls ?? (app === 'https' ? 'server' : 'none'),
  };
}

/** Replicas of a service in one zone of one cluster. */
export function replicasIn(svc: ScenarioService, cluster: string, zone: string): number {
  if (!svc.clusters.includes(cluster)) return 0;
  return svc.replicas[`${cluster}/${zone}`] ?? svc.replicasPerZone;
}
