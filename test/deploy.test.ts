import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';

/** What can be checked of the image and the manifests without a Docker engine or a cluster. */
const ROOT = new URL('..', import.meta.url).pathname;
const read = (p: string) => readFileSync(join(ROOT, p), 'utf8');

function stages(dockerfile: string): Array<{ name: string; from: string; lines: string[] }> {
  const joined = dockerfile.replace(/\\\n\s*/g, ' ').split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('#'));
  const out: Array<{ name: string; from: string; lines: string[] }> = [];
  for (const line of joined) {
    const m = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (m) out.push({ from: m[1]!, name: m[2] ?? String(out.length), lines: [] });
    else out[out.length - 1]?.lines.push(line);
  }
  return out;
}

describe('Dockerfile', () => {
  const all = stages(read('Dockerfile'));
  const runtime = all[all.length - 1]!;

  it('builds in one stage and runs in a slim Node 22 stage without dev dependencies', () => {
    expect(all.map((s) => s.name)).toEqual(['build', 'runtime']);
    expect(runtime.from).toMatch(/^node:22[-.\w]*slim/);
    expect(all[0]!.lines.join('\n')).toMatch(/npm ci[\s\S]*npm run build && npm prune --omit=dev/);
    expect(runtime.lines.join('\n')).not.toMatch(/npm (ci|install)/);
  });

  it('runs as a non-root user, on 0.0.0.0, with a health check', () => {
    expect(runtime.lines).toContainEqual('USER node');
    expect(runtime.lines.find((l) => l.startsWith('ENV'))).toMatch(/HOST=0\.0\.0\.0/);
    expect(runtime.lines.find((l) => l.startsWith('HEALTHCHECK'))).toMatch(/\/healthz/);
  });

  it('starts with the same command as npm start', () => {
    const cmd = runtime.lines.find((l) => l.startsWith('CMD'))!;
    const argv = JSON.parse(cmd.slice(3).trim()) as string[];
    expect(argv.join(' ')).toBe(JSON.parse(read('package.json')).scripts.start);
  });

  it('copies everything the service reads at run time, and rules can be mounted over', () => {
    const copied = runtime.lines.filter((l) => l.startsWith('COPY')).map((l) => l.split(/\s+/).slice(-2)[0]!.replace(/^\.\//, '').replace(/\/$/, ''));
    for (const needed of ['/app/node_modules', '/app/dist', 'package.json', 'cds-hooks', 'rules', 'playground', 'fixtures/scenarios']) {
      expect(copied.some((c) => c.endsWith(needed.replace('/app/', '')) || c === needed), needed).toBe(true);
    }
    // The code finds its service definitions beside dist/ (src/app.ts SERVICE_DEFINITIONS_DIR) and rules in RULES_DIR.
    expect(read('src/app.ts')).toMatch(/new URL\('\.\.\/cds-hooks\/', import\.meta\.url\)/);
    expect(runtime.lines.find((l) => l.startsWith('ENV'))).toMatch(/RULES_DIR=\/app\/rules/);
    expect(read('.dockerignore')).toMatch(/^node_modules$/m);
  });
});

describe('Kubernetes manifests', () => {
  const docs = readdirSync(join(ROOT, 'deploy/kubernetes'))
    .filter((f) => f.endsWith('.yaml'))
    .flatMap((f) => parseAllDocuments(read(`deploy/kubernetes/${f}`)).map((d) => d.toJS()));
  const kind = (k: string) => docs.find((d) => d.kind === k);

  it('have a Deployment, Service, HPA, PDB and a Secret template', () => {
    expect(docs.map((d) => d.kind).sort()).toEqual(['Deployment', 'HorizontalPodAutoscaler', 'Namespace', 'PodDisruptionBudget', 'Secret', 'Service']);
  });

  it('probe /healthz and /readyz, set resources, and run non-root', () => {
    const pod = kind('Deployment').spec.template.spec;
    const c = pod.containers[0];
    expect(c.livenessProbe.httpGet.path).toBe('/healthz');
    expect(c.readinessProbe.httpGet.path).toBe('/readyz?store=optional');
    expect(c.resources.requests.cpu).toBeTruthy();
    expect(c.resources.limits.memory).toBeTruthy();
    expect(pod.securityContext.runAsNonRoot).toBe(true);
    expect(c.securityContext.allowPrivilegeEscalation).toBe(false);
    // Replicas share PostgreSQL: no replica keeps anything another needs.
    expect(c.env.find((e: any) => e.name === 'DATABASE_URL').valueFrom.secretKeyRef.name).toBe('lbp-imaging-cds');
    expect(c.env.find((e: any) => e.name === 'CDS_AUTH').value).toBe('jwt');
    expect(kind('Secret').stringData).toHaveProperty(['trusted-issuers.json']);
    expect(kind('Secret').stringData).toHaveProperty('ADMIN_TOKEN');
    expect(kind('HorizontalPodAutoscaler').spec.scaleTargetRef.name).toBe(kind('Deployment').metadata.name);
    expect(kind('PodDisruptionBudget').spec.selector.matchLabels).toEqual(kind('Deployment').spec.selector.matchLabels);
  });

  it('carry rules/ in a ConfigMap that the init container turns back into the same folders', () => {
    const yaml = execFileSync(process.execPath, [join(ROOT, 'scripts/k8s-rules-configmap.mjs')], { encoding: 'utf8' });
    const configMap = parse(yaml);
    expect(configMap.kind).toBe('ConfigMap');
    expect(configMap.metadata.name).toBe(kind('Deployment').spec.template.spec.volumes.find((v: any) => v.name === 'rules-flat').configMap.name);
    const flat = mkdtempSync(join(tmpdir(), 'rules-flat-'));
    const out = mkdtempSync(join(tmpdir(), 'rules-out-'));
    for (const [key, text] of Object.entries(configMap.data as Record<string, string>)) writeFileSync(join(flat, key), text);
    const init = kind('Deployment').spec.template.spec.initContainers[0];
    const script = (init.command as string[])[2]!.replaceAll('/rules-flat', flat).replaceAll('/rules/', `${out}/`);
    execFileSync('sh', ['-c', script]);
    const walk = (dir: string): string[] => readdirSync(dir).flatMap((f) => (statSync(join(dir, f)).isDirectory() ? walk(join(dir, f)) : [join(dir, f)]));
    const original = walk(join(ROOT, 'rules')).map((f) => relative(join(ROOT, 'rules'), f)).sort();
    expect(walk(out).map((f) => relative(out, f)).sort()).toEqual(original);
    for (const f of original) expect(readFileSync(join(out, f), 'utf8'), f).toBe(readFileSync(join(ROOT, 'rules', f), 'utf8'));
  });
});
