import { Ajv, type ValidateFunction } from 'ajv';

/**
 * The shape of the FHIR fields the service reads. Real EHR data is untrusted input: a resource whose fields have the wrong
 * JSON types is not read at all (its data counts as unreadable), instead of crashing the call or being half-read.
 * Only the fields read are checked; everything else in a resource may be anything.
 */
const str = { type: 'string' } as const;
const coding = { type: 'object', properties: { system: str, code: str, display: str } } as const;
const concept = { type: 'object', properties: { coding: { type: 'array', items: coding }, text: str } } as const;
const concepts = { type: 'array', items: concept } as const;
const reference = { type: 'object', properties: { reference: str, display: str } } as const;
const period = { type: 'object', properties: { start: str, end: str } } as const;
const quantity = { type: 'object', properties: { value: { type: 'number' }, unit: str, code: str, system: str } } as const;
const resource = (type: string, properties: Record<string, unknown>, required: string[] = []) =>
  ({ type: 'object', required: ['resourceType', ...required], properties: { resourceType: { const: type }, id: str, ...properties } }) as const;

const medication = resource('Medication', {
  code: concept,
  ingredient: { type: 'array', items: { type: 'object', properties: { itemCodeableConcept: concept } } },
});

const SCHEMAS = {
  Patient: resource('Patient', {
    birthDate: str,
    gender: str,
    communication: { type: 'array', items: { type: 'object', properties: { language: concept, preferred: { type: 'boolean' } } } },
  }),
  Condition: resource('Condition', {
    subject: reference,
    code: concept,
    clinicalStatus: concept,
    verificationStatus: concept,
    category: concepts,
    onsetDateTime: str,
    onsetPeriod: period,
    recordedDate: str,
  }),
  Observation: resource('Observation', {
    subject: reference,
    status: str,
    code: concept,
    effectiveDateTime: str,
    effectivePeriod: period,
    effectiveInstant: str,
    issued: str,
    valueQuantity: quantity,
  }),
  MedicationRequest: resource('MedicationRequest', {
    subject: reference,
    status: str,
    authoredOn: str,
    medicationCodeableConcept: concept,
    medicationReference: reference,
    contained: { type: 'array', items: { type: 'object', required: ['resourceType'], properties: { resourceType: str } } },
    dosageInstruction: {
      type: 'array',
      items: {
        type: 'object',
        properties: {
          timing: { type: 'object', properties: { repeat: { type: 'object', properties: { boundsPeriod: period, boundsDuration: quantity } } } },
        },
      },
    },
    dispenseRequest: {
      type: 'object',
      properties: { validityPeriod: period, expectedSupplyDuration: quantity, numberOfRepeatsAllowed: { type: 'integer', minimum: 0 } },
    },
  }),
  Medication: medication,
  QuestionnaireResponse: {
    ...resource('QuestionnaireResponse', {
      questionnaire: str,
      status: str,
      authored: str,
      subject: reference,
      item: { type: 'array', items: { $ref: '#/definitions/item' } },
    }),
    definitions: {
      item: {
        type: 'object',
        properties: {
          linkId: str,
          answer: { type: 'array', items: { type: 'object', properties: { valueCoding: coding, valueBoolean: { type: 'boolean' }, valueString: str } } },
          item: { type: 'array', items: { $ref: '#/definitions/item' } },
        },
      },
    },
  },
  ServiceRequest: resource('ServiceRequest', {
    status: str,
    subject: reference,
    code: concept,
    reasonCode: concepts,
    reasonReference: { type: 'array', items: reference },
    contained: { type: 'array', items: { type: 'object', required: ['resourceType'], properties: { resourceType: str } } },
    extension: { type: 'array', items: { type: 'object' } },
  }),
  OperationOutcome: resource('OperationOutcome', {
    issue: { type: 'array', items: { type: 'object', properties: { severity: str, code: str } } },
  }, ['issue']),
  Bundle: resource('Bundle', {
    type: str,
    total: { type: 'integer', minimum: 0 },
    entry: {
      type: 'array',
      items: { type: 'object', properties: { fullUrl: str, resource: { type: 'object' }, search: { type: 'object', properties: { mode: str } } } },
    },
    link: { type: 'array', items: { type: 'object', properties: { relation: str, url: str } } },
  }),
} as const;

export type ShapedType = keyof typeof SCHEMAS;

const ajv = new Ajv({ allErrors: false, strict: false });
const validators = new Map<string, ValidateFunction>(Object.entries(SCHEMAS).map(([k, s]) => [k, ajv.compile(s)]));

/** Whether a resource of a type the service reads has the JSON shape it reads; other types pass. */
export function hasReadableShape(value: unknown): boolean {
  if (typeof value !== 'object' || value === null) return false;
  const type = (value as { resourceType?: unknown }).resourceType;
  if (typeof type !== 'string') return false;
  const validate = validators.get(type);
  return validate ? validate(value) : true;
}

/** The first shape problem of a resource, for a 400 message: "/code/coding must be array". */
export function shapeProblem(value: unknown): string | undefined {
  if (typeof value !== 'object' || value === null) return 'must be an object';
  const type = (value as { resourceType?: unknown }).resourceType;
  const validate = typeof type === 'string' ? validators.get(type) : undefined;
  if (!validate) return typeof type === 'string' ? undefined : 'needs a resourceType';
  if (validate(value)) return undefined;
  const e = validate.errors?.[0];
  return `${e?.instancePath || '/'} ${e?.message ?? 'is invalid'}`;
}

/**
 * The first bound a JSON value breaks: nesting deeper than maxDepth, or an array longer than maxArray. Iterative, so a
 * hostile body cannot overflow the stack.
 */
export function jsonBoundsProblem(value: unknown, maxDepth: number, maxArray: number): string | undefined {
  // Two parallel stacks of objects only: this walks every request body, and a pair per value was most of its cost.
  const values: object[] = [];
  const depths: number[] = [];
  if (typeof value === 'object' && value !== null) {
    values.push(value);
    depths.push(1);
  }
  while (values.length > 0) {
    const v = values.pop()!;
    const d = depths.pop()!;
    if (d > maxDepth) return `nests deeper than ${maxDepth} levels`;
    if (Array.isArray(v)) {
      if (v.length > maxArray) return `has an array longer than ${maxArray} items`;
      for (const child of v) {
        if (typeof child === 'object' && child !== null) {
          values.push(child);
          depths.push(d + 1);
        }
      }
    } else {
      for (const key in v) {
        const child = (v as Record<string, unknown>)[key];
        if (typeof child === 'object' && child !== null) {
          values.push(child);
          depths.push(d + 1);
        }
      }
    }
  }
  return undefined;
}

/** A FHIR id (1 to 64 letters, digits, '-' and '.'), and not "." or "..": safe as a path segment of a FHIR URL. */
export function isFhirId(value: unknown): value is string {
  return typeof value === 'string' && /^[A-Za-z0-9\-.]{1,64}$/.test(value) && value !== '.' && value !== '..';
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;
const isSpace = (b: number) => b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
const ENTRY = Buffer.from('entry');

/**
 * The bounds of jsonBoundsProblem, and the number of entries of a Bundle (its top-level "entry" array), checked on the
 * bytes of a JSON text as they arrive, before anything parses them: an answer past them is refused at the byte that
 * breaks them, not after parsing megabytes. It reads structure only (strings, brackets, commas); whether the text is
 * valid JSON is for JSON.parse. An "entry" key written with escapes is not recognised here; the count after parsing
 * still catches it.
 */
export class JsonBoundsScanner {
  private inString = false;
  private escaped = false;
  /** Per open container: -1 for an object, else the commas seen directly in the array. */
  private readonly commas: number[] = [];
  /** Per open array: whether it has an item. */
  private readonly nonEmpty: boolean[] = [];
  /** Which open container is the top-level entry array (its index in the stacks), or -1. */
  private entryLevel = -1;
  /** The last string directly in the top-level object (its first bytes): the key of the value that follows. */
  private readonly key = Buffer.alloc(ENTRY.length + 1);
  private keyLength = 0;
  private keyAtRoot = false;

  constructor(
    private readonly maxDepth: number,
    private readonly maxArray: number,
    private readonly maxEntries: number,
  ) {}

  /** Reads the next bytes; the first bound they break, or undefined. */
  push(chunk: Uint8Array): string | undefined {
    const { commas, nonEmpty } = this;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.inString) {
        if (this.escaped) this.escaped = false;
        else if (b === BACKSLASH) this.escaped = true;
        else if (b === QUOTE) this.inString = false;
        else if (this.keyAtRoot && this.keyLength < this.key.length) this.key[this.keyLength++] = b;
        continue;
      }
      if (isSpace(b)) continue;
      const top = commas.length - 1;
      if (top >= 0 && commas[top]! >= 0) {
        // Directly inside an array: a comma separates items, anything else but the closing bracket is (part of) an item.
        if (b === COMMA) {
          commas[top]! += 1;
          const items = commas[top]! + 1;
          if (items > this.maxArray) return `has an array longer than ${this.maxArray} items`;
          if (top === this.entryLevel && items > this.maxEntries) return `more than ${this.maxEntries} entries`;
          continue;
        }
        if (b !== CLOSE_ARRAY && !nonEmpty[top]) {
          nonEmpty[top] = true;
          if (this.maxArray < 1) return `has an array longer than ${this.maxArray} items`;
          if (top === this.entryLevel && this.maxEntries < 1) return `more than ${this.maxEntries} entries`;
        }
      }
      if (b === QUOTE) {
        this.inString = true;
        this.keyAtRoot = top === 0 && commas[0] === -1;
        if (this.keyAtRoot) this.keyLength = 0;
      } else if (b === OPEN_OBJECT || b === OPEN_ARRAY) {
        if (commas.length + 1 > this.maxDepth) return `nests deeper than ${this.maxDepth} levels`;
        const isArray = b === OPEN_ARRAY;
        if (isArray && top === 0 && commas[0] === -1 && this.keyLength === ENTRY.length && ENTRY.equals(this.key.subarray(0, ENTRY.length))) this.entryLevel = commas.length;
        commas.push(isArray ? 0 : -1);
        nonEmpty.push(false);
      } else if (b === CLOSE_OBJECT || b === CLOSE_ARRAY) {
        if (commas.length - 1 === this.entryLevel) this.entryLevel = -1;
        commas.pop();
        nonEmpty.pop();
      }
    }
    return undefined;
  }
}
