// deploy/ against a real control plane (test/helpers/kube-control-plane.ts): its
// kustomizations rendered by the built kubectl, make-kubeconfig.sh run with that kubectl
// on PATH, and the part of kube-controller-manager the member RBAC relies on played by
// hand (the control plane has none).
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { parseAllDocuments, stringify } from 'yaml';
import type { ControlPlane } from './kube-control-plane.ts';

export const ROOT = new URL('../..', import.meta.url).pathname;
export const DEPLOY = join(ROOT, 'deploy');
export const MEMBER_RBAC = join(DEPLOY, 'member-rbac');
export const MAKE_KUBECONFIG = join(MEMBER_RBAC, 'make-kubeconfig.sh');
/** The context name in ControlPlane's admin kubeconfig. */
export const ADMIN_CONTEXT = 'fedgate-test';

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; [k: string]: unknown };
  [k: string]: unknown;
}

export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end; a non-zero exit is a result, not a rejection. */
export function run(
  command: string,
  args: string[],
  env: NodeJS.ProcessEnv = process.env,
  input?: string,
): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      command,
      args,
      { env, cwd: ROOT, encoding: 'utf8', timeout: 90_000 },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`${command} ${args.join(' ')}: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? Number(err.code) : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input);
  });
}

/**
 * The control plane's kubectl with `kubeconfig` (default: the admin's) and nothing from
 * the environment's KUBECONFIG; a non-zero exit is a result, not a rejection.
 */
export function kubectlWith(
  cp: ControlPlane,
  args: string[],
  opts: { kubeconfig?: string; input?: string } = {},
): Promise<Run> {
  return run(
    cp.tools.kubectl,
    [`--kubeconfig=${opts.kubeconfig ?? cp.kubeconfig}`, ...args],
    { ...process.env, KUBECONFIG: '' },
    opts.input,
  );
}

/** Every directory under deploy/ that holds a kustomization.yaml, relative to ROOT. */
export async function kustomizations(dir = DEPLOY): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, e.name);
    if (e.isDirectory()) out.push(...(await kustomizations(path)));
    else if (e.name === 'kustomization.yaml') out.push(relative(ROOT, dir));
  }
  return out.sort();
}

/** `kubectl kustomize dir` by the control plane's own kubectl, as objects. */
export async function render(cp: ControlPlane, dir: string): Promise<Manifest[]> {
  const text = await cp.kubectl(['kustomize', join(ROOT, dir)]);
  return parseAllDocuments(text).map((d, i) => {
    if (d.errors.length > 0) throw new Error(`${dir} document ${i}: ${d.errors[0]?.message}`);
    return d.toJS() as Manifest;
  });
}

export const toYaml = (objects: readonly object[]): string =>
  objects.map((o) => stringify(o)).join('---\n');

/**
 * What kube-controller-manager's token controller does for a Secret of type
 * kubernetes.io/service-account-token: fills in token, ca.crt and namespace. The
 * token comes from the TokenRequest API, bound to the Secret, so deleting the Secret
 * revokes it as it does a token the controller wrote.
 */
export async function fillTokenSecret(
  cp: ControlPlane,
  namespace: string,
  account: string,
  secret: string,
): Promise<void> {
  const token = (
    await cp.kubectl([
      'create',
      'token',
      account,
      `--namespace=${namespace}`,
      '--bound-object-kind=Secret',
      `--bound-object-name=${secret}`,
      '--duration=2h',
    ])
  ).trim();
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const patch = { data: { token: b64(token), 'ca.crt': b64(cp.ca), namespace: b64(namespace) } };
  await cp.kubectl([
    'patch',
    'secret',
    secret,
    `--namespace=${namespace}`,
    '--type=merge',
    `--patch=${JSON.stringify(patch)}`,
  ]);
}

/** Runs deploy/member-rbac/make-kubeconfig.sh against `cp`, with its kubectl first on PATH. */
export function makeKubeconfig(cp: ControlPlane, args: string[]): Promise<Run> {
  return run(MAKE_KUBECONFIG, [...args], {
    ...process.env,
    PATH: `${cp.tools.dir}:${process.env.PATH ?? ''}`,
    KUBECONFIG: cp.kubeconfig,
  });
}

/**
 * The rows of `kubectl auth can-i --list`, whitespace collapsed: one string per
 * resource or non-resource URL with its verbs.
 */
export function canIRows(table: string): Set<string> {
  return new Set(
    table
      .split('\n')
      .slice(1)
      .map((l) => l.trim().split(/\s+/).join(' '))
      .filter((l) => l !== ''),
  );
}

/**
 * Writes `object` into the control plane's etcd as kube-apiserver stores it (JSON,
 * which its storage decoder accepts beside protobuf), past the API's validation: the
 * only way to give a real server an EndpointSlice with a loopback address, which the
 * API refuses ("may not be in the loopback range") and tests must use. Served at once
 * to lists and watches, like an object the API wrote.
 */
export async function putInEtcd(
  cp: ControlPlane,
  resource: string,
  object: Manifest,
): Promise<void> {
  const { name, namespace } = object.metadata;
  const key = `/registry/${resource}/${namespace === undefined ? '' : `${namespace}/`}${name}`;
  const stored = {
    ...object,
    metadata: {
      uid: randomUUID(),
      creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      ...object.metadata,
    },
  };
  const b64 = (s: string) => Buffer.from(s).toString('base64');
  const res = await fetch(`${cp.etcdUrl}/v3/kv/put`, {
    method: 'POST',
    body: JSON.stringify({ key: b64(key), value: b64(JSON.stringify(stored)) }),
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`etcd put ${key}: ${res.status} ${await res.text()}`);
}

export interface RuleLike {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
}

/**
 * deploy/member-rbac's ServiceAccount, token Secret, ClusterRole and binding under
 * another name, applied, the token filled in; `rules` edits the role's rules. Returns
 * the ClusterRole as applied and as deploy/ has it.
 */
export async function applyReaderCopy(
  cp: ControlPlane,
  name: string,
  rules: (rules: RuleLike[]) => RuleLike[] = (r) => r,
): Promise<{ role: Manifest; original: Manifest; secret: string }> {
  const rbac = await render(cp, 'deploy/member-rbac');
  const find = (kind: string): Manifest => {
    const o = rbac.find((x) => x.kind === kind);
    if (!o) throw new Error(`no ${kind} in deploy/member-rbac`);
    return { ...structuredClone(o), metadata: { ...o.metadata, name } };
  };
  const account = find('ServiceAccount');
  const namespace = account.metadata.namespace ?? 'default';
  const secret = find('Secret');
  secret.metadata.name = `${name}-token`;
  secret.metadata.annotations = { 'kubernetes.io/service-account.name': name };
  const original = find('ClusterRole');
  const role = { ...original, rules: rules(original.rules as RuleLike[]) };
  const binding = find('ClusterRoleBinding');
  binding.roleRef = { ...(binding.roleRef as object), name };
  binding.subjects = [{ kind: 'ServiceAccount', name, namespace }];
  await cp.kubectl(['apply', '-f', '-'], toYaml([account, secret, role, binding]));
  await fillTokenSecret(cp, namespace, name, secret.metadata.name);
  return { role, original, secret: secret.metadata.name };
}
