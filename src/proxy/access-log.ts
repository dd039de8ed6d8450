// http.accessLog: the proxy's observer plus one info line per finished request.
import type { Logger } from '../observe/log.ts';
import type { ProxiedRequest, ProxyObserver } from './observer.ts';

/** `inner` plus one info line per finished request on `log`'s child `access`. */
export function withAccessLog(inner: ProxyObserver, log: Logger): ProxyObserver {
  const access = log.child({ log: 'access' });
  return {
    request(r: ProxiedRequest) {
      inner.request(r);
      access.info(
        {
          client: r.client,
          method: r.method,
          target: r.target,
          service: r.service,
          status: r.status,
          // client_cancelled requests show status 499: nothing was sent.
          outcome: r.outcome,
          ms: Math.round(r.seconds * 1e4) / 10,
          cluster: r.cluster,
          zone: r.zone,
          tier: r.tier,
          endpoint: r.endpoint,
          tries: r.tries,
          ...(r.route ? { route: r.route } : {}),
          ...(r.upgrade ? { upgrade: true } : {}),
          ...(r.grpc ? { grpc_status: r.grpcStatus ?? null } : {}),
        },
        'request',
      );
    },
    retry: (service, reason) => inner.retry(service, reason),
    retryBudgetExhausted: (service, reason) => inner.retryBudgetExhausted?.(service, reason),
    http2StreamReset: () => inner.http2StreamReset?.(),
    connectionClosed: (reason) => inner.connectionClosed?.(reason),
    clientOverShare: (service) => inner.clientOverShare?.(service),
    tunnelIdleClosed: (service) => inner.tunnelIdleClosed?.(service),
    tlsFailure: (service, cluster, reason) => inner.tlsFailure?.(service, cluster, reason),
    mirrored: (service, result) => inner.mirrored?.(service, result),
    ruleMatched: (route, rule) => inner.ruleMatched?.(route, rule),
  };
}
