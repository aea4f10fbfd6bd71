/**
 * A small schema language for config sections: each field has a type, a default and a doc line.
 * The TypeScript type of a section's values is derived from its schema, so `cfg.TEST.NMS` is a
 * `number` without a hand-written interface that could drift from the defaults.
 */

/** Boolean field. */
export interface BoolField {
  readonly type: 'bool';
  readonly default: boolean;
  readonly doc: string;
}
/** Integer field with optional bounds. */
export interface IntField {
  readonly type: 'int';
  readonly default: number;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
}
/** Floating-point field with optional bounds. */
export interface FloatField {
  readonly type: 'float';
  readonly default: number;
  readonly doc: string;
  readonly min?: number;
  readonly max?: number;
}
/** Free string field (registry names are validated when the registry is asked). */
export interface StringField {
  readonly type: 'string';
  readonly default: string;
  readonly doc: string;
}
/** One of a fixed set of strings. */
export interface EnumField<V extends string = string> {
  readonly type: 'enum';
  readonly values: readonly V[];
  readonly default: V;
  readonly doc: string;
}
/** List of numbers (`integer` restricts to integers; `length` fixes the length). */
export interface NumberListField {
  readonly type: 'numbers';
  readonly default: readonly number[];
  readonly doc: string;
  readonly integer?: boolean;
  readonly length?: number;
}
/** List of lists of numbers (e.g. anchor sizes per level). */
export interface NumberListListField {
  readonly type: 'number-lists';
  readonly default: readonly (readonly number[])[];
  readonly doc: string;
}

/** Any field of a section schema. */
export type ConfigField = BoolField | IntField | FloatField | StringField | EnumField | NumberListField | NumberListListField;

/** The value type of a field. */
export type FieldValue<F> = F extends BoolField
  ? boolean
  : F extends IntField | FloatField
    ? number
    : F extends EnumField<infer V>
      ? V
      : F extends StringField
        ? string
        : F extends NumberListField
          ? readonly number[]
          : F extends NumberListListField
            ? readonly (readonly number[])[]
            : never;

/** Field map of a section. */
export type SectionFields = Readonly<Record<string, ConfigField>>;

/** The values of a section, typed from its schema. */
export type SectionValues<F extends SectionFields> = { readonly [K in keyof F]: FieldValue<F[K]> };

/** A named config section (`MODEL`, `RPN`, a plugin's own section …) with its fields. */
export interface ConfigSection<F extends SectionFields = SectionFields> {
  /** Upper-case section name, as it appears in YAML (`FAST_RCNN`). */
  readonly name: string;
  /** One line on what the section configures. */
  readonly doc: string;
  /** Package that defines the section (shown in errors). */
  readonly provider: string;
  readonly fields: F;
}

/** Defines a config section; `fields` keeps its literal types so values are typed. */
export function defineSection<const F extends SectionFields>(name: string, doc: string, provider: string, fields: F): ConfigSection<F> {
  if (!/^[A-Z][A-Z0-9_]*$/.test(name)) throw new Error(`config section name "${name}" must be UPPER_SNAKE_CASE`);
  for (const key of Object.keys(fields)) {
    if (!/^[A-Z][A-Z0-9_]*$/.test(key)) throw new Error(`config key "${name}.${key}" must be UPPER_SNAKE_CASE`);
  }
  return { name, doc, provider, fields };
}

/** Field constructors. */
export const field = {
  /** A boolean. */
  bool: (def: boolean, doc: string): BoolField => ({ type: 'bool', default: def, doc }),
  /** An integer, optionally bounded. */
  int: (def: number, doc: string, bounds: { min?: number; max?: number } = {}): IntField => ({ type: 'int', default: def, doc, ...bounds }),
  /** A float, optionally bounded. */
  float: (def: number, doc: string, bounds: { min?: number; max?: number } = {}): FloatField => ({ type: 'float', default: def, doc, ...bounds }),
  /** A string (e.g. a registry name). */
  string: (def: string, doc: string): StringField => ({ type: 'string', default: def, doc }),
  /** One of `values`. */
  oneOf: <const V extends string>(values: readonly V[], def: V, doc: string): EnumField<V> => ({ type: 'enum', values, default: def, doc }),
  /** A list of numbers. */
  numbers: (def: readonly number[], doc: string, opts: { integer?: boolean; length?: number } = {}): NumberListField => ({
    type: 'numbers',
    default: def,
    doc,
    ...opts,
  }),
  /** A list of lists of numbers. */
  numberLists: (def: readonly (readonly number[])[], doc: string): NumberListListField => ({ type: 'number-lists', default: def, doc }),
} as const;

/** Human-readable description of what a field accepts (used in error messages and docs). */
export function describeField(f: ConfigField): string {
  switch (f.type) {
    case 'bool':
      return 'true or false';
    case 'int':
      return `an integer${bounds(f)}`;
    case 'float':
      return `a number${bounds(f)}`;
    case 'string':
      return 'a string';
    case 'enum':
      return `one of ${f.values.map((v) => JSON.stringify(v)).join(', ')}`;
    case 'numbers':
      return `a list of ${f.integer ? 'integers' : 'numbers'}${f.length === undefined ? '' : ` of length ${f.length}`}`;
    case 'number-lists':
      return 'a list of lists of numbers';
  }
}

function bounds(f: IntField | FloatField): string {
  if (f.min !== undefined && f.max !== undefined) return ` in [${f.min}, ${f.max}]`;
  if (f.min !== undefined) return ` >= ${f.min}`;
  if (f.max !== undefined) return ` <= ${f.max}`;
  return '';
}
