import { writeFileSync } from 'node:fs';
import { ControlPlane } from '../test/helpers/kube-control-plane.ts';
process.env.FEDGATE_KUBE_TOOLS ??= '/root/.cache/fedgate-tools/kube-v1.37.2-etcd-v3.7.0-go1.26.8';
const cp = await ControlPlane.start();
const run = async (args: string[]) => { try { return await cp.kubectl(args); } catch (e) { return `ERR ${(e as Error).message}`; } };
try {
  const f = `${cp.dir}/objs.yaml`;
  writeFileSync(f, `
apiVersion: v1
kind: Namespace
metadata: { name: shop }
---
apiVersion: v1
kind: Service
metadata: { name: web, namespace: shop }
spec: { type: LoadBalancer, selector: { app: web }, ports: [{ name: http, port: 80, targetPort: 8080, protocol: TCP }] }
---
apiVersion: v1
kind: Node
metadata: { name: n1, labels: { topology.kubernetes.io/zone: z1 } }
spec: {}
---
apiVersion: discovery.k8s.io/v1
kind: EndpointSlice
metadata: { name: web-abcde, namespace: shop, labels: { kubernetes.io/service-name: web } }
addressType: IPv4
endpoints:
- addresses: [127.212.1.1]
  conditions: { ready: true, serving: true, terminating: false }
  nodeName: n1
  zone: z1
  targetRef: { kind: Pod, namespace: shop, name: web-1 }
ports: [{ name: http, port: 8080, protocol: TCP }]
`);
  console.log(await run(['apply', '-f', f]));
  console.log(await run(['get', 'endpointslice', '-n', 'shop', '-o', 'yaml']));
  console.log(await run(['get', 'svc', '-n', 'shop', 'web', '-o', 'jsonpath={.spec.clusterIP} {.spec.ports}']));
  console.log(await run(['patch', 'svc', '-n', 'shop', 'web', '--subresource=status', '--type=merge', '-p', '{"status":{"loadBalancer":{"ingress":[{"ip":"127.212.255.1","ipMode":"VIP"}]}}}']));
  console.log(await run(['get', 'svc', '-n', 'shop', 'web', '-o', 'jsonpath={.status}']));
  console.log(await run(['patch', 'node', 'n1', '--subresource=status', '--type=merge', '-p', '{"status":{"conditions":[{"type":"Ready","status":"True","reason":"KubeletReady","message":"ok"}],"addresses":[{"type":"InternalIP","address":"127.212.0.10"}]}}']));
  console.log(await run(['get', 'node', 'n1', '-o', 'jsonpath={.status}']));
  console.log(await run(['get', 'svc', 'kubernetes', '-o', 'jsonpath={.spec.clusterIP}']));
} finally {
  await cp.stop();
}
