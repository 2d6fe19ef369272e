#!/usr/bin/env node
// Prints a Kubernetes ConfigMap holding rules/ (or the folder given), one key per file: the path with "/" written "__"
// (ConfigMap keys cannot hold slashes). The Deployment's init container turns the keys back into folders.
//   npm run k8s:rules > rules-configmap.yaml        npm run k8s:rules -- ./site-rules > rules-configmap.yaml
import { readFile, readdir } from 'node:fs/promises';
import { join, relative } from 'node:path';

const root = process.argv[2] ?? new URL('../rules/', import.meta.url).pathname;

async function files(dir) {
  const out = [];
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await files(path)));
    else out.push(path);
  }
  return out.sort();
}

const lines = [
  'apiVersion: v1',
  'kind: ConfigMap',
  'metadata:',
  '  name: lbp-imaging-cds-rules',
  '  namespace: lbp-imaging-cds',
  '  labels: { app.kubernetes.io/name: lbp-imaging-cds }',
  'data:',
];
for (const path of await files(root)) {
  const key = relative(root, path).split('/').join('__');
  if (!/^[-._a-zA-Z0-9]+$/.test(key)) throw new Error(`${path}: cannot be a ConfigMap key (${key})`);
  const text = await readFile(path, 'utf8');
  lines.push(`  ${key}: |`);
  for (const line of text.replace(/\n$/, '').split('\n')) lines.push(line.length > 0 ? `    ${line}` : '');
}
process.stdout.write(`${lines.join('\n')}\n`);
