import type { FastifyPluginAsync } from 'fastify';
import { Errors } from '../../errors.js';
import type { ServiceCatalog } from '../../cds-hooks/service-catalog.js';
import type { Store } from '../../store/database.js';
import { storeFeedback, type FeedbackItem } from '../../store/feedback.js';
import type { Metrics } from '../../observability/metrics.js';
import { isStoreOutage, within } from '../../store/supervisor.js';
import { storeUnavailable } from '../error-handler.js';

/** A feedback write that has not committed within this long is answered 503 (the client may send it again: it is idempotent). */
export const FEEDBACK_WRITE_WAIT_MS = 5_000;

const feedbackSchema = {
  type: 'object',
  required: ['feedback'],
  properties: {
    feedback: {
      type: 'array',
      minItems: 1,
      maxItems: 1000,
      items: {
        type: 'object',
        required: ['card', 'outcome', 'outcomeTimestamp'],
        properties: {
          card: { type: 'string', minLength: 1, maxLength: 256 },
          outcome: { enum: ['accepted', 'overridden'] },
          acceptedSuggestions: {
            type: 'array',
            maxItems: 100,
            items: { type: 'object', required: ['id'], properties: { id: { type: 'string', minLength: 1, maxLength: 256 } } },
          },
          overrideReason: {
            type: 'object',
            properties: {
              reason: {
                type: 'object',
                required: ['code'],
                properties: { system: { type: 'string', maxLength: 512 }, code: { type: 'string', minLength: 1, maxLength: 256 }, display: { type: 'string' } },
              },
              userComment: { type: 'string', maxLength: 10_000 },
            },
          },
          outcomeTimestamp: { type: 'string', format: 'date-time' },
        },
      },
    },
  },
} as const;

/**
 * POST /cds-services/{id}/feedback (CDS Hooks 2.0): validated, committed before the 200, and idempotent.
 * The clinician's comment is free text: the store keeps only that there was one.
 */
export const feedbackRoutes: FastifyPluginAsync<{ catalog: ServiceCatalog; store: Store; now: () => Date; metrics: Metrics }> = async (app, opts) => {
  // 200 only once the feedback is committed: with the store down, or a write that fails or does not finish, 503.
  app.post<{ Params: { id: string }; Body: { feedback: FeedbackItem[] } }>(
    '/cds-services/:id/feedback',
    {
      schema: { body: feedbackSchema },
      preValidation: async (request) => {
        if (!opts.catalog.has(request.params.id)) throw Errors.unknownService(request.params.id);
      },
    },
    async (request, reply) => {
      request.body.feedback.forEach((f, i) => {
        if (f.outcome === 'accepted' && !(f.acceptedSuggestions?.length)) {
          throw Errors.invalidRequest(`feedback[${i}]: an accepted outcome needs acceptedSuggestions (cds-fb-2)`);
        }
        if (f.overrideReason && !f.overrideReason.reason && !f.overrideReason.userComment) {
          throw Errors.invalidRequest(`feedback[${i}].overrideReason needs a reason or a userComment (cds-fb-3)`);
        }
      });
      if (opts.store.state !== 'up') return storeUnavailable(request, reply);
      let stored: number;
      try {
        stored = await within(FEEDBACK_WRITE_WAIT_MS, storeFeedback(opts.store, request.params.id, request.body.feedback, opts.now()));
      } catch (err) {
        // An outage (or a write that did not finish in time) is 503, try again; any other failure is a fault, a 500.
        if (!isStoreOutage(err) && opts.store.state === 'up') throw err;
        return storeUnavailable(request, reply, err);
      }
      for (const f of request.body.feedback) opts.metrics.feedback.inc({ outcome: f.outcome });
      request.log.info({ service: request.params.id, items: request.body.feedback.length, stored }, 'feedback');
      return reply.send({});
    },
  );
};
