import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { type CaseMappingOptions, caseConfigLayer, isCaseDocument } from './case.js';
import { detectron2ConfigFromDocument, isDetectron2ConfigDocument } from './detectron2.js';
import { ConfigError } from '../errors.js';
import { type ConfigField, type ConfigSection, type SectionFields, type SectionValues, describeField } from './schema.js';
import {
  CORE_SECTIONS,
  FAST_RCNN_SECTION,
  FPN_SECTION,
  INPUT_SECTION,
  KRCNN_SECTION,
  LIMITS_SECTION,
  MODEL_SECTION,
  MRCNN_SECTION,
  RESNETS_SECTION,
  RPN_SECTION,
  SOLVER_SECTION,
  TEST_SECTION,
  TRAIN_SECTION,
} from './sections.js';

/** A value a config key can hold. */
export type ConfigValue = boolean | number | string | readonly number[] | readonly (readonly number[])[];

/** The core sections' values, typed from their schemas. */
export interface CoreConfig {
  readonly MODEL: SectionValues<typeof MODEL_SECTION.fields>;
  readonly INPUT: SectionValues<typeof INPUT_SECTION.fields>;
  readonly TEST: SectionValues<typeof TEST_SECTION.fields>;
  readonly RPN: SectionValues<typeof RPN_SECTION.fields>;
  readonly FPN: SectionValues<typeof FPN_SECTION.fields>;
  readonly RESNETS: SectionValues<typeof RESNETS_SECTION.fields>;
  readonly FAST_RCNN: SectionValues<typeof FAST_RCNN_SECTION.fields>;
  readonly MRCNN: SectionValues<typeof MRCNN_SECTION.fields>;
  readonly KRCNN: SectionValues<typeof KRCNN_SECTION.fields>;
  readonly TRAIN: SectionValues<typeof TRAIN_SECTION.fields>;
  readonly SOLVER: SectionValues<typeof SOLVER_SECTION.fields>;
  readonly LIMITS: SectionValues<typeof LIMITS_SECTION.fields>;
}

/**
 * A validated, frozen configuration: the core sections plus any plugin sections that were
 * registered when it was loaded. Read plugin sections with {@link sectionValues}.
 */
export type RcnnConfig = CoreConfig & { readonly [section: string]: Readonly<Record<string, ConfigValue>> };

/** A partial config as written in YAML/JSON: `{ SECTION: { KEY: value } }`. */
export type ConfigOverrides = Readonly<Record<string, Readonly<Record<string, unknown>>>>;

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions {
  /** Plugin sections besides the core ones (from `configSections(container)`). */
  readonly sections?: readonly ConfigSection[];
  /** Layers applied in order over the defaults: objects, or YAML/JSON file paths. */
  readonly layers?: readonly (ConfigOverrides | string)[];
  /** `KEY=VALUE` overrides applied last (`MODEL.NUM_CLASSES=5`); VALUE is parsed as YAML. */
  readonly set?: readonly string[];
  /**
   * How parity `case.json` layers map head types no core section describes: the registered
   * implementations' mappers (`{ mappers: caseMappers(container) }`).
   */
  readonly caseMapping?: CaseMappingOptions;
}

/** The typed values of a (plugin) section of a loaded config. */
export function sectionValues<F extends SectionFields>(config: RcnnConfig, section: ConfigSection<F>): SectionValues<F> {
  const values = config[section.name];
  if (values === undefined) {
    throw new ConfigError(`config has no section ${section.name} (provided by ${section.provider}): load the config with that package's sections registered`, {
      key: section.name,
    });
  }
  return values as unknown as SectionValues<F>;
}

/**
 * yaml's warnings (unknown directives, unresolved tags) go to `process.emitWarning`, i.e. stray
 * lines on stderr around the CLI's one-line error; the values are validated anyway, so only
 * errors are kept (they throw).
 */
const YAML_OPTIONS = { logLevel: 'error' } as const;

/** Reads a YAML or JSON config file (or a parity case.json, or a Detectron2 config) into a plain object (not yet validated). */
export function readConfigFile(path: string, caseMapping: CaseMappingOptions = {}): ConfigOverrides {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (cause) {
    throw new ConfigError(`cannot read config file ${path}: ${(cause as Error).message}`, { cause, hint: 'check the path' });
  }
  let parsed: unknown;
  try {
    parsed = extname(path).toLowerCase() === '.json' ? JSON.parse(text) : parseYaml(text, YAML_OPTIONS);
  } catch (cause) {
    throw new ConfigError(`config file ${path} is not valid ${extname(path) === '.json' ? 'JSON' : 'YAML'}: ${(cause as Error).message}`, { cause });
  }
  if (parsed === null || parsed === undefined) return {};
  // A parity case (case.json) is a config too.
  if (isCaseDocument(parsed)) return caseConfigLayer(parsed, path, caseMapping);
  // So is a Detectron2 config (cfg.dump() or a model-zoo YAML with _BASE_).
  if (isDetectron2ConfigDocument(parsed)) return detectron2ConfigFromDocument(parsed, path).layer;
  if (typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw new ConfigError(`config file ${path} must hold a mapping of sections (MODEL:, TEST:, …), got ${Array.isArray(parsed) ? 'a list' : typeof parsed}`);
  }
  return parsed as ConfigOverrides;
}

/** Parses `SECTION.KEY=VALUE` into a one-key override (VALUE as YAML: numbers, booleans, lists). */
export function parseSetOverride(assignment: string): ConfigOverrides {
  const eq = assignment.indexOf('=');
  if (eq <= 0) throw new ConfigError(`override "${assignment}" is not KEY=VALUE (e.g. MODEL.NUM_CLASSES=5)`);
  const key = assignment.slice(0, eq).trim();
  const raw = assignment.slice(eq + 1).trim();
  const [section, name, ...rest] = key.split('.');
  if (section === undefined || name === undefined || rest.length > 0 || section.length === 0 || name.length === 0) {
    throw new ConfigError(`override key "${key}" must be SECTION.KEY (e.g. TEST.NMS)`, { key });
  }
  let value: unknown;
  try {
    value = parseYaml(raw, YAML_OPTIONS);
  } catch {
    value = raw;
  }
  return { [section]: { [name]: value ?? raw } };
}

/**
 * Builds a validated config: defaults of every section, then each layer in order, then `set`
 * overrides; applies Detectron's implications (RPN.RPN_ON from FASTER_RCNN / RPN_ONLY) and
 * rejects unknown sections/keys, wrong types and contradictory flags with a {@link ConfigError}
 * that names the key and what it accepts.
 */
export function loadConfig(options: LoadConfigOptions = {}): RcnnConfig {
  const sections = new Map<string, ConfigSection>();
  for (const s of [...CORE_SECTIONS, ...(options.sections ?? [])] as ConfigSection[]) {
    const existing = sections.get(s.name);
    if (existing && existing !== s) {
      throw new ConfigError(`config section ${s.name} is defined twice (by ${existing.provider} and ${s.provider})`, { key: s.name });
    }
    sections.set(s.name, s);
  }
  const values = new Map<string, Record<string, ConfigValue>>();
  for (const s of sections.values()) {
    values.set(s.name, Object.fromEntries(Object.entries(s.fields).map(([k, f]) => [k, cloneValue(f.default)])));
  }
  const explicit = new Set<string>();
  const layers = [...(options.layers ?? []), ...(options.set ?? []).map(parseSetOverride)];
  for (const layer of layers) {
    const obj = typeof layer === 'string' ? readConfigFile(layer, options.caseMapping) : layer;
    const origin = typeof layer === 'string' ? layer : undefined;
    applyLayer(sections, values, obj, explicit, origin);
  }
  applyImplications(values, explicit);
  const frozen: Record<string, Readonly<Record<string, ConfigValue>>> = {};
  for (const [name, v] of values) frozen[name] = Object.freeze(v);
  const config = Object.freeze(frozen) as unknown as RcnnConfig;
  checkConsistency(config);
  return config;
}

function applyLayer(
  sections: ReadonlyMap<string, ConfigSection>,
  values: Map<string, Record<string, ConfigValue>>,
  layer: ConfigOverrides,
  explicit: Set<string>,
  origin: string | undefined,
): void {
  const where = origin ? ` (in ${origin})` : '';
  if (typeof layer !== 'object' || layer === null || Array.isArray(layer)) {
    throw new ConfigError(`a config layer must be a mapping of sections${where}`);
  }
  for (const [sectionName, entries] of Object.entries(layer)) {
    const section = sections.get(sectionName);
    if (!section) {
      throw new ConfigError(`unknown config section "${sectionName}"${where}; known sections: ${[...sections.keys()].join(', ')}`, {
        key: sectionName,
        hint: closest(sectionName, [...sections.keys()]),
      });
    }
    if (typeof entries !== 'object' || entries === null || Array.isArray(entries)) {
      throw new ConfigError(`config section ${sectionName} must be a mapping of keys${where}`, { key: sectionName });
    }
    const target = values.get(sectionName)!;
    for (const [key, raw] of Object.entries(entries)) {
      // Own keys only: `constructor`, `__proto__`, `toString` … are on every object's prototype.
      const f = Object.hasOwn(section.fields, key) ? section.fields[key] : undefined;
      const dotted = `${sectionName}.${key}`;
      if (!f) {
        const known = Object.keys(section.fields);
        throw new ConfigError(`unknown config key ${dotted}${where}; ${sectionName} has: ${known.join(', ')}`, {
          key: dotted,
          hint: closest(key, known),
        });
      }
      target[key] = coerce(f, raw, dotted, where);
      explicit.add(dotted);
    }
  }
}

function coerce(f: ConfigField, raw: unknown, key: string, where: string): ConfigValue {
  const fail = (): never => {
    throw new ConfigError(`config key ${key} must be ${describeField(f)}, got ${showValue(raw)}${where}`, { key });
  };
  switch (f.type) {
    case 'bool':
      if (typeof raw === 'boolean') return raw;
      return fail();
    case 'int':
    case 'float': {
      if (typeof raw !== 'number' || !Number.isFinite(raw)) return fail();
      if (f.type === 'int' && !Number.isInteger(raw)) return fail();
      if ((f.min !== undefined && raw < f.min) || (f.max !== undefined && raw > f.max)) return fail();
      return raw;
    }
    case 'string':
      if (typeof raw === 'string' && raw.length > 0) return raw;
      return fail();
    case 'enum':
      if (typeof raw === 'string' && (f.values as readonly string[]).includes(raw)) return raw;
      return fail();
    case 'numbers': {
      if (!Array.isArray(raw) || !raw.every((v) => typeof v === 'number' && Number.isFinite(v))) return fail();
      if (f.integer && !raw.every((v) => Number.isInteger(v))) return fail();
      if (f.length !== undefined && raw.length !== f.length) return fail();
      return Object.freeze([...(raw as number[])]);
    }
    case 'number-lists': {
      if (!Array.isArray(raw) || !raw.every((l) => Array.isArray(l) && l.every((v) => typeof v === 'number' && Number.isFinite(v)))) return fail();
      return Object.freeze((raw as number[][]).map((l) => Object.freeze([...l])));
    }
  }
}

/** A value for an error message; JSON.stringify throws on BigInt and cycles, which must not hide the real error. */
function showValue(raw: unknown): string {
  if (typeof raw === 'number' && !Number.isFinite(raw)) return String(raw); // JSON would say null
  try {
    return JSON.stringify(raw) ?? String(raw);
  } catch {
    return String(raw);
  }
}

function cloneValue(v: ConfigValue): ConfigValue {
  if (Array.isArray(v)) return Object.freeze(v.map((x) => (Array.isArray(x) ? Object.freeze([...x]) : x))) as ConfigValue;
  return v;
}

/** Detectron's implied flags: an end-to-end Faster R-CNN or an RPN-only model has the RPN on. */
function applyImplications(values: Map<string, Record<string, ConfigValue>>, explicit: ReadonlySet<string>): void {
  const rpn = values.get('RPN')!;
  const model = values.get('MODEL')!;
  if (model.FASTER_RCNN || model.RPN_ONLY) {
    if (explicit.has('RPN.RPN_ON') && rpn.RPN_ON === false) {
      const why = model.RPN_ONLY ? 'MODEL.RPN_ONLY' : 'MODEL.FASTER_RCNN';
      throw new ConfigError(`RPN.RPN_ON is false but ${why} is true, which needs the RPN`, { key: 'RPN.RPN_ON' });
    }
    rpn.RPN_ON = true;
  }
}

function checkConsistency(c: RcnnConfig): void {
  const m = c.MODEL;
  if (m.RPN_ONLY && (m.MASK_ON || m.KEYPOINTS_ON)) {
    const flag = m.MASK_ON ? 'MODEL.MASK_ON' : 'MODEL.KEYPOINTS_ON';
    throw new ConfigError(`${flag} contradicts MODEL.RPN_ONLY: an RPN-only model has no detections to put masks or keypoints on`, {
      key: flag,
    });
  }
  if (!c.RPN.RPN_ON) {
    throw new ConfigError('RPN.RPN_ON is false: models with precomputed proposals are not supported; set MODEL.FASTER_RCNN or MODEL.RPN_ONLY', {
      key: 'RPN.RPN_ON',
    });
  }
  const f = c.FPN;
  if (f.RPN_MIN_LEVEL > f.RPN_MAX_LEVEL) {
    throw new ConfigError(`FPN.RPN_MIN_LEVEL (${f.RPN_MIN_LEVEL}) > FPN.RPN_MAX_LEVEL (${f.RPN_MAX_LEVEL})`, { key: 'FPN.RPN_MIN_LEVEL' });
  }
  if (f.ROI_MIN_LEVEL > f.ROI_MAX_LEVEL) {
    throw new ConfigError(`FPN.ROI_MIN_LEVEL (${f.ROI_MIN_LEVEL}) > FPN.ROI_MAX_LEVEL (${f.ROI_MAX_LEVEL})`, { key: 'FPN.ROI_MIN_LEVEL' });
  }
  if (c.TEST.SCALE > c.TEST.MAX_SIZE) {
    throw new ConfigError(`TEST.SCALE (${c.TEST.SCALE}) > TEST.MAX_SIZE (${c.TEST.MAX_SIZE})`, { key: 'TEST.SCALE' });
  }
  for (const [key, list] of [
    ['RPN.ASPECT_RATIOS', c.RPN.ASPECT_RATIOS],
    ['FPN.RPN_ASPECT_RATIOS', c.FPN.RPN_ASPECT_RATIOS],
    ['RPN.SIZES', c.RPN.SIZES],
  ] as const) {
    if (list.length === 0 || list.some((v) => v <= 0)) throw new ConfigError(`${key} must be a non-empty list of positive numbers`, { key });
  }
  const steps = c.SOLVER.STEPS;
  if (steps.some((v, i) => v < 0 || (i > 0 && v < steps[i - 1]!))) {
    throw new ConfigError(`SOLVER.STEPS must be non-negative and in increasing order, got [${steps.join(', ')}]`, { key: 'SOLVER.STEPS' });
  }
  if (c.RPN.ANCHOR_GENERATOR === 'detectron2' && m.LEGACY_PLUS_ONE) {
    throw new ConfigError("RPN.ANCHOR_GENERATOR detectron2 contradicts MODEL.LEGACY_PLUS_ONE (Detectron's +1 anchors); set one of them", {
      key: 'RPN.ANCHOR_GENERATOR',
    });
  }
  if (c.INPUT.PIXEL_STDS.some((v) => v === 0)) throw new ConfigError('INPUT.PIXEL_STDS must not contain 0', { key: 'INPUT.PIXEL_STDS' });
}

/** Suggests the closest known name ("did you mean …?") for a misspelt key. */
function closest(name: string, known: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const k of known) {
    const d = editDistance(name.toUpperCase(), k.toUpperCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = k;
    }
  }
  return best !== undefined && bestDistance <= Math.max(2, Math.floor(name.length / 3)) ? `did you mean ${best}?` : undefined;
}

function editDistance(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1] === b[j - 1] ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

/** Markdown table of every key of the given sections (defaults and docs), for docs/config.md. */
export function describeConfig(sections: readonly ConfigSection[] = CORE_SECTIONS as unknown as ConfigSection[]): string {
  const lines: string[] = [];
  for (const s of sections) {
    lines.push(`## ${s.name}`, '', `${s.doc} Provided by \`${s.provider}\`.`, '', '| key | default | accepts | meaning |', '| --- | --- | --- | --- |');
    for (const [k, f] of Object.entries(s.fields)) {
      lines.push(`| \`${s.name}.${k}\` | \`${JSON.stringify(f.default)}\` | ${describeField(f)} | ${f.doc.replace(/\|/g, '\\|')} |`);
    }
    lines.push('');
  }
  return lines.join('\n');
}

/** The config as a plain nested object (for writing next to results or into ONNX metadata). */
export function configToObject(config: RcnnConfig): Record<string, Record<string, ConfigValue>> {
  return JSON.parse(JSON.stringify(config)) as Record<string, Record<string, ConfigValue>>;
}
