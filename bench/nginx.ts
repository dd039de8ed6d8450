// nginx as the reference proxy of the HTTP and gRPC benchmarks, configured as in
// /work/shared/ANCHORS.md (one worker, keep-alive both ways, no access log), a real
// Debian binary run as a child process. Its clients may speak HTTP/1.1, HTTP/2 over TLS
// (`listen … ssl http2`) or HTTP/2 in clear (`listen … http2`, prior knowledge only);
// its upstreams HTTP/1.1 (proxy_pass) or gRPC (grpc_pass, HTTP/2 in clear).
//
//   const nginx = await startNginxProxy({ listen: [{ port }], upstreams: ['127.240.0.1:18080'], dir });
//   await nginx.stop();
import { spawn, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { requireTool } from '../test/helpers/tools.ts';
import { supervise } from './child.ts';
import { processTreeCpuSeconds } from './http-anchors.ts';

/** Where nginx is, installed by scripts/ensure-tools.sh if missing (never skipped). */
const nginxBin = () => requireTool('nginx', 'the HTTP and gRPC proxy benchmarks');

/** True once a TCP connection to host:port succeeds within `timeoutMs`. */
function accepts(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (ok: boolean) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

/** One port nginx listens on, and what its clients speak there. */
export interface NginxListen {
  port: number;
  /** HTTP/2: over TLS by ALPN with `tls`, else in clear with prior knowledge (h2c). */
  http2?: boolean;
  /** TLS with `certificate`. */
  tls?: boolean;
}

export interface NginxProxyOptions {
  /** Ports nginx listens on, one server for all; the first is `url`'s. */
  listen: NginxListen[];
  /** Listen address; 127.0.0.1 by default. */
  listenHost?: string;
  /** Upstream servers as `host:port` (e.g. `127.240.0.1:18080`), one `server` line each. */
  upstreams: string[];
  /**
   * `http` (the default): proxy_pass over HTTP/1.1 with keep-alive. `grpc`: grpc_pass
   * over HTTP/2 in clear; nginx carries one call per upstream connection at a time
   * (it does not multiplex upstream), the connections kept alive between calls.
   */
  upstreamProtocol?: 'http' | 'grpc';
  /** PEM files for the `tls` listens. */
  certificate?: { certFile: string; keyFile: string };
  /**
   * Working directory for nginx.conf, the PID file, error.log and nginx's temp
   * folders; created if missing. As root it is made traversable (0711): the worker
   * runs as `nobody` and must reach its temp folders, which a mkdtemp folder (0700)
   * would deny it (request bodies over 16 KiB then fail with 500).
   */
  dir: string;
  /** How long to wait for the port to accept connections; 10 s by default. */
  startTimeoutMs?: number;
}

export interface NginxProxy {
  /** `http://HOST:PORT/` of the first listen (`https://` if it is TLS). */
  url: string;
  host: string;
  port: number;
  /** The master's PID. */
  pid: number;
  /** CPU seconds used so far by the master and its worker. */
  cpuSeconds(): number;
  /** nginx's error log so far (warnings and up). */
  log(): Promise<string>;
  /** Stops nginx (SIGTERM, then SIGKILL after 5 s) and waits for it; safe to call twice. */
  stop(): Promise<void>;
}

/**
 * ANCHORS.md's nginx reverse proxy: one worker, keep-alive to the upstreams (128 idle
 * connections kept) and from clients, no access log. Everything nginx writes goes into
 * `dir`, so neither /var/log/nginx nor /var/lib/nginx (the package's paths) is used.
 */
export function nginxConf(dir: string, host: string, o: NginxProxyOptions): string {
  const servers = o.upstreams.map((u) => `    server ${u};`).join('\n');
  const temp = ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
    .map((t) => `  ${t}_temp_path ${join(dir, `${t}_temp`)};`)
    .join('\n');
  const listens = o.listen
    .map((l) => `    listen ${host}:${l.port}${l.tls ? ' ssl' : ''}${l.http2 ? ' http2' : ''};`)
    .join('\n');
  const tls = o.certificate
    ? `    ssl_certificate ${o.certificate.certFile};\n    ssl_certificate_key ${o.certificate.keyFile};\n`
    : '';
  const pass =
    o.upstreamProtocol === 'grpc'
      ? `      grpc_pass grpc://up;
      grpc_set_header Host $host;`
      : `      proxy_pass http://up;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      # The client's Host, not "up": upstreams (and fedgate) route on it.
      proxy_set_header Host $host;`;
  // keepalive_requests also bounds the requests of an HTTP/2 connection since 1.19.7:
  // at its default (1000) nginx would GOAWAY a load tool's connections mid-run.
  return `worker_processes 1;
pid ${join(dir, 'nginx.pid')};
error_log ${join(dir, 'error.log')} warn;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
${temp}
  upstream up {
${servers}
    keepalive 128;
    keepalive_requests 1000000;
  }
  server {
${listens}
${tls}    location / {
${pass}
    }
  }
}
`;
}

/**
 * Writes ANCHORS.md's nginx config into `opts.dir`, runs `nginx -c FILE -p DIR -g
 * 'daemon off;'` as a child process, and resolves once it has written its PID file and
 * its port accepts connections. Rejects if the port is already taken, with nginx's
 * output and error log if it exits first or does not listen in time, and with a
 * message naming nginx if it is missing and cannot be installed.
 */
export async function startNginxProxy(opts: NginxProxyOptions): Promise<NginxProxy> {
  if (opts.upstreams.length === 0) throw new Error('startNginxProxy: at least one upstream');
  const first = opts.listen[0];
  if (first === undefined) throw new Error('startNginxProxy: at least one listen');
  if (opts.listen.some((l) => l.tls) && !opts.certificate) {
    throw new Error('startNginxProxy: a TLS listen needs a certificate');
  }
  const nginx = nginxBin();
  const host = opts.listenHost ?? '127.0.0.1';
  const dir = opts.dir;
  await mkdir(dir, { recursive: true });
  if (process.getuid?.() === 0) await chmod(dir, 0o711);
  // Something already listening there would pass the readiness check below for nginx.
  for (const l of opts.listen) {
    if (await accepts(host, l.port, 500)) {
      throw new Error(`startNginxProxy: ${host}:${l.port} is already in use`);
    }
  }
  const conf = join(dir, 'nginx.conf');
  const errorLog = join(dir, 'error.log');
  const pidFile = join(dir, 'nginx.pid');
  await rm(pidFile, { force: true });
  await writeFile(conf, nginxConf(dir, host, opts));

  // -e: the log for messages before the config is read (Debian's default is stderr).
  const args = ['-c', conf, '-p', `${dir}/`, '-e', errorLog, '-g', 'daemon off;'];
  const child = spawn(nginx, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  // SIGTERM if the benchmark dies: the master then takes its worker down with it.
  const proc = supervise(child, 'SIGTERM');
  const stop = proc.stop;
  const log = async () => readFile(errorLog, 'utf8').catch(() => '');
  const failure = async (why: string) =>
    new Error(
      `nginx ${why} (${nginx} ${args.join(' ')}):\n${proc.output()}${await log()}\n--- ${conf}\n${await readFile(conf, 'utf8')}`,
    );

  const deadline = Date.now() + (opts.startTimeoutMs ?? 10_000);
  for (;;) {
    if (!proc.alive()) {
      await stop();
      const spawnError = proc.spawnError();
      throw await failure(
        spawnError ? `could not start: ${spawnError.message}` : `exited (${child.exitCode})`,
      );
    }
    // The master writes its PID file once it holds its sockets; then the ports must accept.
    const pidNow = await readFile(pidFile, 'utf8').catch(() => '');
    if (Number(pidNow.trim()) === child.pid && (await accepts(host, first.port, 200))) break;
    if (Date.now() > deadline) {
      await stop();
      throw await failure(`did not listen on ${host}:${first.port} in time`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const pid = child.pid!;
  return {
    url: `${first.tls ? 'https' : 'http'}://${host}:${first.port}/`,
    host,
    port: first.port,
    pid,
    cpuSeconds: () => processTreeCpuSeconds(pid),
    log,
    stop,
  };
}

/** The installed nginx's version, e.g. `1.22.1` (`nginx -v` prints it on stderr). */
export function nginxVersion(): string {
  const r = spawnSync(nginxBin(), ['-v'], { encoding: 'utf8' });
  return /nginx\/(\S+)/.exec(`${r.stderr}${r.stdout}`)?.[1] ?? 'unknown';
}
