import type { FastifyInstance, onRequestHookHandler, RouteOptions } from 'fastify';

/**
 * Authentication is decided by where a route is registered, never by the text of the URL: the router decodes
 * percent-escapes and accepts absolute-form targets, so a check on `request.url` can be walked around. Every route
 * under a protected prefix is registered inside its scope; the scope's hooks run for its routes whatever the spelling
 * of the request target, and a start-up check refuses a protected path registered anywhere else.
 */
export type AuthScope = 'cds-hooks' | 'admin';

/** Path prefixes and the scope their routes must belong to. */
export const PROTECTED_PREFIXES: ReadonlyArray<{ prefix: string; scope: AuthScope }> = [
  { prefix: '/cds-services', scope: 'cds-hooks' },
  { prefix: '/analytics', scope: 'admin' },
  { prefix: '/playground', scope: 'admin' },
];

/**
 * The routes each scope registered, held here and nowhere else: a route cannot claim a scope by setting something in its
 * own options.
 */
const registered = new WeakMap<RouteOptions, AuthScope>();

/** The scope a route path must be registered in, or undefined for a public path (any path that starts with a prefix, in any case). */
export function requiredScope(path: string): AuthScope | undefined {
  const lower = path.toLowerCase();
  return PROTECTED_PREFIXES.find(({ prefix }) => lower.startsWith(prefix))?.scope;
}

export class RouteScopeError extends Error {
  constructor(readonly problems: string[]) {
    super(`routes outside their authenticated scope: ${problems.join('; ')}`);
    this.name = 'RouteScopeError';
  }
}

/**
 * Registers `routes` in an encapsulated scope named `scope`: `checks` (authentication first) run on every request to every
 * route registered in it, and each route is remembered as the scope's so that the start-up check can prove it.
 */
export async function registerInScope(
  app: FastifyInstance,
  scope: AuthScope,
  checks: onRequestHookHandler[],
  routes: (scoped: FastifyInstance) => Promise<void>,
): Promise<void> {
  await app.register(async (scoped) => {
    scoped.addHook('onRoute', (route) => {
      registered.set(route, scope);
    });
    for (const check of checks) scoped.addHook('onRequest', check);
    await routes(scoped);
  });
}

/**
 * At start-up, every route whose path falls under a protected prefix must have been registered in that prefix's scope:
 * a route added later outside it stops the service from starting rather than answering without authentication.
 */
export function guardRouteScopes(app: FastifyInstance): void {
  const routes: RouteOptions[] = [];
  app.addHook('onRoute', (route) => {
    routes.push(route);
  });
  app.addHook('onReady', async () => {
    const problems: string[] = [];
    for (const route of routes) {
      const wanted = requiredScope(route.url ?? '');
      if (wanted && registered.get(route) !== wanted) {
        problems.push(`${String(route.method)} ${route.url} must be registered in the ${wanted} scope`);
      }
    }
    if (problems.length > 0) throw new RouteScopeError(problems);
  });
}
