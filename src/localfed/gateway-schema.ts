// What the Gateway API CRDs' structural schemas make kube-apiserver do beside validation
// proper: prune fields the schema does not declare, fill the defaults it declares, and
// refuse duplicates in list-type map and set lists. The schemas come trimmed from the
// CRDs of each release channel (gateway-crd-schema.json, written by
// tools/gateway-api/crd-schema.ts): a member serves the channel its scenario names.
import { readFileSync } from 'node:fs';
import { isRecord } from './objects.ts';
import type { StatusCause } from './status.ts';

/** A trimmed schema node: fields (p), list items (i), default (d), nullable (n), map keys (k), set (s). */
export interface SchemaNode {
  p?: Record<string, SchemaNode>;
  i?: SchemaNode;
  d?: unknown;
  n?: true;
  k?: string[];
  s?: true;
}

/** The Gateway API's release channels: experimental adds fields (HTTPRoute `retry`…) and kinds. */
export const GATEWAY_API_CHANNELS = ['standard', 'experimental'] as const;
export type GatewayApiChannel = (typeof GATEWAY_API_CHANNELS)[number];

interface SchemaFile {
  module: string;
  channels: Record<GatewayApiChannel, Record<string, SchemaNode>>;
}

const FILE = JSON.parse(
  readFileSync(new URL('./gateway-crd-schema.json', import.meta.url), 'utf8'),
) as SchemaFile;

/** The module version the schemas were taken from (sigs.k8s.io/gateway-api@vX.Y.Z). */
export const GATEWAY_API_MODULE = FILE.module;

/** A kind's schema as the channel's CRD declares it. */
export function schemaOf(
  kind: string,
  channel: GatewayApiChannel = 'standard',
): SchemaNode | undefined {
  return FILE.channels[channel][kind];
}

/**
 * The structural defaulting of apiextensions-apiserver: a field absent (or null and not
 * nullable) where its parent is present gets its default, and defaulting goes on inside
 * what it filled; a null without a default is dropped.
 */
export function applyDefaults(node: SchemaNode, value: unknown): void {
  if (Array.isArray(value)) {
    if (node.i) for (const item of value) applyDefaults(node.i, item);
    return;
  }
  if (!isRecord(value) || !node.p) return;
  for (const [k, child] of Object.entries(node.p)) {
    const v = value[k];
    if (v === null && !child.n) {
      if (child.d === undefined) delete value[k];
      else value[k] = structuredClone(child.d);
    } else if (v === undefined && child.d !== undefined) {
      value[k] = structuredClone(child.d);
    }
  }
  for (const [k, v] of Object.entries(value)) {
    const child = node.p[k];
    if (child) applyDefaults(child, v);
  }
}

/**
 * Duplicates in list-type map lists (`Duplicate value: {"name":"http"}` on the later
 * item) and set lists (`Duplicate value: "x"`), as kube-apiserver reports them.
 */
export function listCauses(node: SchemaNode, value: unknown, path = ''): StatusCause[] {
  const out: StatusCause[] = [];
  walkLists(node, value, path, out);
  return out;
}

function walkLists(node: SchemaNode, value: unknown, path: string, out: StatusCause[]): void {
  if (Array.isArray(value)) {
    const seen = new Set<string>();
    value.forEach((item, i) => {
      const here = `${path}[${i}]`;
      const key = node.k ? mapKey(node.k, item) : node.s ? JSON.stringify(item) : undefined;
      if (key !== undefined) {
        if (seen.has(key))
          out.push({
            reason: 'FieldValueDuplicate',
            message: `Duplicate value: ${key}`,
            field: here,
          });
        seen.add(key);
      }
      if (node.i) walkLists(node.i, item, here, out);
    });
    return;
  }
  if (!isRecord(value) || !node.p) return;
  for (const [k, v] of Object.entries(value)) {
    const child = node.p[k];
    if (child) walkLists(child, v, path ? `${path}.${k}` : k, out);
  }
}

function mapKey(keys: string[], item: unknown): string | undefined {
  if (!isRecord(item)) return undefined;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (item[k] !== undefined) out[k] = item[k];
  return JSON.stringify(out);
}
