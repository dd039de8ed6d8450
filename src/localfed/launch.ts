// Starting a local federation the way `localfed up` and `fedgate demo` both need it:
// the simulated clusters, a kubeconfig per cluster in DIR, a fedgate configuration
// for them in DIR/fedgate.yaml, and the control channel `localfed ctl` talks to.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { parse, stringify } from 'yaml';
import { FedgateError } from '../errors.ts';
import type { Logger } from '../observe/log.ts';
import { backendTlsConfig, withBackendTls } from './backend-tls-config.ts';
import { ControlServer, STATE_FILE } from './control.ts';
import { LocalFederation } from './federation.ts';
import type { ApiKind } from './member.ts';
import { DEFAULT_SCENARIO_PATH, loadScenario } from './scenario.ts';

/** The fedgate configuration written next to the kubeconfigs. */
export const FEDGATE_CONFIG_FILE = 'fedgate.yaml';

export interface LaunchOptions {
  /** Scenario YAML; default: the built-in galaxy federation. */
  readonly scenario?: string | undefined;
  readonly dir: string;
  /** Which API server each member runs. */
  readonly api: ApiKind;
  readonly addressBlock: number;
  readonly apiPort: number;
  readonly log: Logger;
  /** Merged over the generated configuration's top level (e.g. listeners, self, localities). */
  readonly config?: Record<string, unknown>;
}

export interface LaunchedFederation {
  readonly fed: LocalFederation;
  readonly control: ControlServer;
  readonly dir: string;
  /** Cluster name → absolute kubeconfig path. */
  readonly kubeconfigs: Record<string, string>;
  readonly configFile: string;
  stop(): Promise<void>;
}

export async function launchLocalFederation(opts: LaunchOptions): Promise<LaunchedFederation> {
  const scenario = await loadScenario(
    opts.scenario ? resolve(opts.scenario) : DEFAULT_SCENARIO_PATH,
  );
  const dir = resolve(opts.dir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  let fed: LocalFederation;
  try {
    fed = await LocalFederation.start(scenario, {
      api: opts.api,
      addressBlock: opts.addressBlock,
      apiPort: opts.apiPort,
      onEvent: (m) => opts.log.info(m),
    });
  } catch (e) {
    // Missing binaries for --api real say themselves what to do, with their own exit code.
    if (e instanceof FedgateError && e.code === 'KUBE_TOOLS_MISSING') throw e;
    const msg = (e as Error).message;
    const hint = /EADDRINUSE/.test(msg)
      ? ' (another local federation may be running; try --address-block or --api-port 0)'
      : '';
    throw new FedgateError(
      'LOCALFED_START_FAILED',
      `cannot start the local federation: ${msg}${hint}`,
      {
        cause: e,
      },
    );
  }
  const kubeconfigs: Record<string, string> = {};
  const control = new ControlServer(fed);
  try {
    for (const c of fed.clusters) kubeconfigs[c.name] = await c.writeKubeconfig(dir);
    const configFile = resolve(dir, FEDGATE_CONFIG_FILE);
    const generated = parse(
      fed.fedgateConfig(
        Object.fromEntries(Object.entries(kubeconfigs).map(([k, v]) => [k, `./${basename(v)}`])),
      ),
    ) as Record<string, unknown>;
    const tls = backendTlsConfig(fed.scenario, await fed.writePki(dir));
    const config = withBackendTls(mergeConfig(generated, opts.config ?? {}), tls);
    await writeFile(configFile, `# fedgate start --config ${configFile}\n${stringify(config)}`, {
      mode: 0o600,
    });
    await control.start();
    await control.writeState(dir, kubeconfigs);
    return {
      fed,
      control,
      dir,
      kubeconfigs,
      configFile,
      async stop() {
        await control.stop();
        await fed.stop();
        await rm(resolve(dir, STATE_FILE), { force: true });
      },
    };
  } catch (e) {
    await control.stop().catch(() => {});
    await fed.stop();
    throw e;
  }
}

/**
 * The generated configuration with the caller's merged over its top level; the
 * gatewayAPI block key by key, so a caller's listener mapping keeps the generated
 * config clusters.
 */
function mergeConfig(
  generated: Record<string, unknown>,
  given: Record<string, unknown>,
): Record<string, unknown> {
  const merged = { ...generated, ...given };
  const [a, b] = [generated.gatewayAPI, given.gatewayAPI];
  if (isObject(a) && isObject(b)) merged.gatewayAPI = { ...a, ...b };
  return merged;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
