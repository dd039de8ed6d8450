// Loads the configuration file: YAML → schema → checks that need the file system
// → a frozen Config. Every problem names the path of the field and what is wrong.
import { X509Certificate } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createSecureContext } from 'node:tls';
import { KubeConfig } from '@kubernetes/client-node';
import { parseDocument } from 'yaml';
import { z } from 'zod';
import { FedgateError } from '../errors.ts';
import { gatewayApiProblems } from './gateway-api.ts';
import { type Config, type ConfigInput, configSchema } from './schema.ts';
import { expandSelfNode, selfClusterProblems } from './self.ts';
import { backendTlsProblems } from './tls-files.ts';

export class ConfigError extends FedgateError {
  readonly problems: readonly string[];
  constructor(source: string, problems: string[]) {
    super('CONFIG_INVALID', `${source}: invalid configuration\n  ${problems.join('\n  ')}`);
    this.problems = problems;
  }
}

/** clusters[1].kubeconfig, as a user would write it. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    else out += out ? `.${String(p)}` : String(p);
  }
  return out || '(top level)';
}

function issueText(issue: z.core.$ZodIssue): string {
  const path = formatPath(issue.path);
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((k) => `${formatPath([...issue.path, k])}: unknown field`).join('\n  ');
  }
  if (issue.code === 'invalid_type' && issue.input === undefined) return `${path}: required`;
  return `${path}: ${issue.message}`;
}

export function loadConfig(file: string, env: NodeJS.ProcessEnv = process.env): Config {
  const abs = resolve(file);
  let text: string;
  try {
    text = readFileSync(abs, 'utf8');
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'file not found' : String(e);
    throw new ConfigError(abs, [why]);
  }
  return parseConfig(text, abs, env);
}

/**
 * Validates config text; `source` names the file and anchors relative kubeconfig
 * paths; `env` fills `${VAR}` in the keys that take it (`self.node`).
 */
export function parseConfig(
  text: string,
  source: string,
  env: NodeJS.ProcessEnv = process.env,
): Config {
  const doc = parseDocument(text, { prettyErrors: false });
  if (doc.errors.length > 0) {
    throw new ConfigError(
      source,
      doc.errors.map((e) => `YAML line ${(e.linePos?.[0].line ?? 0).toString()}: ${e.message}`),
    );
  }
  const raw: unknown = doc.toJS();
  if (raw === null || raw === undefined) throw new ConfigError(source, ['the file is empty']);
  const unset = expandSelfNode(raw, env);
  if (unset.length > 0) throw new ConfigError(source, unset);
  const parsed = configSchema.safeParse(raw, { reportInput: true });
  if (!parsed.success) throw new ConfigError(source, parsed.error.issues.map(issueText));
  const config = parsed.data;
  const baseDir = dirname(source);
  for (const c of config.clusters) c.kubeconfig = resolve(baseDir, c.kubeconfig);
  for (const c of config.http.tls?.certificates ?? []) {
    c.cert = resolve(baseDir, c.cert);
    c.key = resolve(baseDir, c.key);
  }
  for (const p of Object.values(config.routing.backendTLS)) {
    if (p.caFiles) p.caFiles = p.caFiles.map((f) => resolve(baseDir, f));
    const c = p.clientCertificate;
    if (c) {
      c.certFile = resolve(baseDir, c.certFile);
      c.keyFile = resolve(baseDir, c.keyFile);
    }
  }
  const problems = crossCheck(config);
  if (problems.length > 0) throw new ConfigError(source, problems);
  return deepFreeze(config);
}

/** What the schema alone cannot say: uniqueness, files, contexts, references. */
function crossCheck(config: Config): string[] {
  const problems: string[] = [];
  const seen = new Map<string, number>();
  for (const [i, c] of config.clusters.entries()) {
    const first = seen.get(c.name);
    if (first !== undefined) {
      problems.push(`clusters[${i}].name: "${c.name}" is already clusters[${first}].name`);
    }
    seen.set(c.name, i);
    if (!existsSync(c.kubeconfig)) {
      problems.push(`clusters[${i}].kubeconfig: file not found: ${c.kubeconfig}`);
      continue;
    }
    const kc = new KubeConfig();
    try {
      kc.loadFromFile(c.kubeconfig);
    } catch (e) {
      problems.push(
        `clusters[${i}].kubeconfig: cannot load ${c.kubeconfig}: ${(e as Error).message}`,
      );
      continue;
    }
    const contexts = kc.getContexts().map((x) => x.name);
    const context = c.context ?? kc.getCurrentContext();
    if (c.context !== undefined && !contexts.includes(c.context)) {
      problems.push(
        `clusters[${i}].context: no context "${c.context}" in ${c.kubeconfig} (it has: ${contexts.join(', ') || 'none'})`,
      );
    } else if (!context || !contexts.includes(context)) {
      problems.push(
        `clusters[${i}].kubeconfig: ${c.kubeconfig} has no current context; set clusters[${i}].context`,
      );
    }
  }
  for (const [region, order] of Object.entries(config.routing.failoverOrder)) {
    for (const [j, r] of order.entries()) {
      if (r === region) {
        problems.push(`routing.failoverOrder.${region}[${j}]: a region cannot fail over to itself`);
      }
    }
  }
  for (const [i, c] of (config.http.tls?.certificates ?? []).entries()) {
    const at = `http.tls.certificates[${i}]`;
    const missing = (['cert', 'key'] as const).filter((f) => !existsSync(c[f]));
    for (const f of missing) problems.push(`${at}.${f}: file not found: ${c[f]}`);
    if (missing.length > 0) continue;
    try {
      // Parses both and checks that the key belongs to the certificate.
      createSecureContext({ cert: readFileSync(c.cert), key: readFileSync(c.key) });
      new X509Certificate(readFileSync(c.cert));
    } catch (e) {
      problems.push(`${at}: cannot use ${c.cert} with ${c.key}: ${(e as Error).message}`);
    }
  }
  for (const [name, p] of Object.entries(config.routing.backendTLS)) {
    problems.push(...backendTlsProblems(`routing.backendTLS.${name}`, p));
  }
  for (const [key, svc] of Object.entries(config.routing.services)) {
    if (svc.tls !== undefined && !Object.hasOwn(config.routing.backendTLS, svc.tls)) {
      problems.push(`routing.services.${key}.tls: no profile "${svc.tls}" in routing.backendTLS`);
    }
  }
  const names = new Set(config.clusters.map((c) => c.name));
  for (const [i, name] of config.writeBack.skipServiceImports.entries()) {
    if (!names.has(name)) {
      problems.push(`writeBack.skipServiceImports[${i}]: no member cluster named "${name}"`);
    }
  }
  if (config.self.zone !== undefined && config.self.region === undefined) {
    problems.push('self.region: required when self.zone is set');
  }
  problems.push(...selfClusterProblems(config));
  problems.push(...gatewayApiProblems(config));
  return problems;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object' && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** The effective configuration in the form a user writes: durations as 30s, addresses as host:port. */
export function effectiveConfig(config: Config): ConfigInput {
  return z.encode(configSchema, config) as ConfigInput;
}
