/**
 * A small JSON Schema (draft 2020-12) validator for the keywords
 * `molt contract` writes, so tests can check sample values against a
 * contract without a schema library: type, const, enum, properties,
 * required, additionalProperties, propertyNames, items, prefixItems,
 * minItems, maxItems, uniqueItems, minimum, maximum, exclusiveMinimum,
 * exclusiveMaximum, minLength, maxLength, pattern, anyOf, allOf, not.
 * Annotations (`$schema`, `format`, `x-…`) are ignored. An unknown keyword
 * throws, so a contract cannot silently use one this validator skips.
 */
type Schema = boolean | { [keyword: string]: unknown };

const annotations = new Set(['$schema', 'format', 'x-superjson', 'description', 'title']);

function typeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** True if `value` (a JSON value) satisfies `schema`. */
export function validates(schema: Schema, value: unknown): boolean {
  if (schema === true) return true;
  if (schema === false) return false;
  for (const [keyword, arg] of Object.entries(schema)) {
    if (!keywordHolds(keyword, arg, schema, value)) return false;
  }
  return true;
}

function keywordHolds(keyword: string, arg: unknown, schema: { [k: string]: unknown }, value: unknown): boolean {
  const t = typeOf(value);
  const isObject = t === 'object';
  const obj = value as Record<string, unknown>;
  const arr = value as unknown[];
  switch (keyword) {
    case 'type':
      return arg === t || (arg === 'number' && t === 'integer');
    case 'const':
      return deepEqual(arg, value);
    case 'enum':
      return (arg as unknown[]).some((e) => deepEqual(e, value));
    case 'properties':
      return !isObject || Object.entries(arg as Record<string, Schema>).every(([k, s]) => !Object.hasOwn(obj, k) || validates(s, obj[k]));
    case 'required':
      return !isObject || (arg as string[]).every((k) => Object.hasOwn(obj, k));
    case 'additionalProperties': {
      if (!isObject) return true;
      const declared = (schema.properties ?? {}) as Record<string, unknown>;
      return Object.keys(obj).every((k) => Object.hasOwn(declared, k) || validates(arg as Schema, obj[k]));
    }
    case 'propertyNames':
      return !isObject || Object.keys(obj).every((k) => validates(arg as Schema, k));
    case 'prefixItems':
      return t !== 'array' || (arg as Schema[]).every((s, i) => i >= arr.length || validates(s, arr[i]));
    case 'items': {
      if (t !== 'array') return true;
      const from = ((schema.prefixItems ?? []) as unknown[]).length;
      return arr.slice(from).every((item) => validates(arg as Schema, item));
    }
    case 'minItems':
      return t !== 'array' || arr.length >= (arg as number);
    case 'maxItems':
      return t !== 'array' || arr.length <= (arg as number);
    case 'uniqueItems':
      return t !== 'array' || !arg || new Set(arr.map((x) => JSON.stringify(x))).size === arr.length;
    case 'minimum':
      return typeof value !== 'number' || value >= (arg as number);
    case 'maximum':
      return typeof value !== 'number' || value <= (arg as number);
    case 'exclusiveMinimum':
      return typeof value !== 'number' || value > (arg as number);
    case 'exclusiveMaximum':
      return typeof value !== 'number' || value < (arg as number);
    case 'minLength':
      return typeof value !== 'string' || [...value].length >= (arg as number);
    case 'maxLength':
      return typeof value !== 'string' || [...value].length <= (arg as number);
    case 'pattern':
      return typeof value !== 'string' || new RegExp(arg as string, 'u').test(value);
    case 'anyOf':
      return (arg as Schema[]).some((s) => validates(s, value));
    case 'allOf':
      return (arg as Schema[]).every((s) => validates(s, value));
    case 'not':
      return !validates(arg as Schema, value);
    default:
      if (annotations.has(keyword) || keyword.startsWith('x-')) return true;
      throw new Error(`the test validator does not know the JSON Schema keyword '${keyword}'`);
  }
}
