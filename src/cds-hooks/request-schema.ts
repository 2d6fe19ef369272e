/**
 * JSON Schema of a CDS Hooks 2.0 order-select / order-sign request, checked by fastify's ajv before the handler runs.
 * Semantic rules a schema cannot say (hook matches the service, selections point into draftOrders) are in validate-request.ts.
 */
const reference = { type: 'string', minLength: 1, maxLength: 512 } as const;

/** FHIR resources nest, but not this deep; deeper bodies are refused before anything walks them. */
export const MAX_JSON_DEPTH = 64;
/** No array in a hook request needs more items (a year of encounter diagnoses is far fewer); the body limit bounds the rest. */
export const MAX_JSON_ARRAY = 20_000;

export const hookRequestSchema = {
  type: 'object',
  required: ['hook', 'hookInstance', 'context'],
  properties: {
    hook: { type: 'string', minLength: 1, maxLength: 128 },
    hookInstance: { type: 'string', minLength: 1, maxLength: 256 },
    fhirServer: { type: 'string', format: 'uri', maxLength: 2048 },
    fhirAuthorization: {
      type: 'object',
      required: ['access_token', 'token_type', 'expires_in', 'scope', 'subject'],
      properties: {
        access_token: { type: 'string', minLength: 1 },
        token_type: { type: 'string', enum: ['Bearer', 'bearer'] },
        expires_in: { type: 'integer' },
        scope: { type: 'string' },
        subject: { type: 'string' },
        patient: { type: 'string' },
      },
    },
    context: {
      type: 'object',
      // draftOrders is required by the order hooks only (validate-request.ts).
      required: ['userId', 'patientId'],
      properties: {
        userId: reference,
        patientId: { type: 'string', minLength: 1, maxLength: 256 },
        encounterId: { type: 'string', minLength: 1, maxLength: 256 },
        selections: { type: 'array', maxItems: 1000, items: reference },
        draftOrders: {
          type: 'object',
          required: ['resourceType'],
          properties: {
            resourceType: { const: 'Bundle' },
            entry: {
              type: 'array',
              maxItems: 1000,
              items: { type: 'object', required: ['resource'], properties: { resource: { type: 'object', required: ['resourceType'] } } },
            },
          },
        },
      },
    },
    prefetch: {
      type: 'object',
      additionalProperties: { anyOf: [{ type: 'object' }, { type: 'null' }] },
    },
    extension: { type: 'object' },
  },
} as const;
