/**
 * The rule engine behind every name map: an ordered list of regex rules, first match wins. Each
 * rule carries human-readable `from`/`to` patterns, which docs/weights.md shows as tables (a test
 * keeps the two in sync), so the documentation is the code.
 */
import type { HostTensor } from '@rcnn/core';
import { CheckpointError } from '../errors.js';
import type { CheckpointReport } from '../report.js';

/** What a name map knows about the checkpoint as a whole. */
export interface MapContext {
  /** Lowest FPN stage present (2 when the FPN starts at res2 / P2): FPN block i is stage i + this. */
  readonly fpnMinStage: number;
  /** Where Detectron's `res5_*` blobs belong: the backbone (FPN/C5 bodies) or the C4 box head. */
  readonly layout: 'fpn' | 'c4';
}

/** Post-rename tensor rewrites some rules need (they look at other tensors, e.g. the class count). */
export type TransformKind =
  | 'd2-class-scores'
  | 'd2-box-deltas'
  | 'd2-mask-logits'
  | 'd2-rpn-objectness'
  | 'd2-rpn-deltas'
  | 'tv-to-d2-class-scores'
  | 'tv-to-d2-box-deltas'
  | 'tv-to-d2-mask-logits'
  | 'tv-to-d2-rpn-objectness'
  | 'tv-to-d2-rpn-deltas';

/** One name rule. */
export interface NameRule {
  /** Source pattern for the docs (`{s}` stage, `{b}` block, `{k}` index, `{p}` parameter). */
  readonly from: string;
  /** Target pattern for the docs; empty for ignored keys. */
  readonly to: string;
  /** Extra semantics (row permutations, synthesized tensors, why a key is ignored). */
  readonly note?: string;
  readonly pattern: RegExp;
  /** Target name; undefined for ignored keys. */
  readonly target?: (m: RegExpExecArray, ctx: MapContext) => string;
  /** Ignored keys: the reason reported. */
  readonly ignore?: string;
  readonly transform?: TransformKind;
}

/** Builds a rename rule. */
export function rename(
  from: string,
  to: string,
  pattern: RegExp,
  target: (m: RegExpExecArray, ctx: MapContext) => string,
  extra: { note?: string; transform?: TransformKind } = {},
): NameRule {
  return { from, to, pattern, target, ...extra };
}

/** Builds a rule for keys that are deliberately not loaded (reported as ignored, with the reason). */
export function ignore(from: string, pattern: RegExp, reason: string): NameRule {
  return { from, to: '', pattern, ignore: reason, note: reason };
}

/** The outcome of applying a rule list. */
export interface MappedTensors {
  readonly tensors: Map<string, HostTensor>;
  /** target name -> transform to apply once every tensor is renamed. */
  readonly transforms: Map<string, TransformKind>;
}

/**
 * Renames every tensor by the first matching rule. Keys no rule matches keep their name and are
 * listed in `report.unmapped` (so the model build reports them as unused instead of them
 * vanishing); two keys mapping to one name fail with a {@link CheckpointError}.
 */
export function applyRules(input: ReadonlyMap<string, HostTensor>, rules: readonly NameRule[], ctx: MapContext, report: CheckpointReport): MappedTensors {
  const tensors = new Map<string, HostTensor>();
  const transforms = new Map<string, TransformKind>();
  const origin = new Map<string, string>();
  const put = (name: string, from: string, t: HostTensor): void => {
    const prior = origin.get(name);
    if (prior !== undefined) {
      throw new CheckpointError('name-map', `${report.source}: "${prior}" and "${from}" both map to "${name}"`, { file: report.source, key: name });
    }
    origin.set(name, from);
    tensors.set(name, t);
  };
  const unmapped: [string, HostTensor][] = [];
  for (const [key, t] of input) {
    let done = false;
    for (const rule of rules) {
      const m = rule.pattern.exec(key);
      if (!m) continue;
      done = true;
      if (rule.ignore !== undefined || !rule.target) {
        report.ignored.push({ key, reason: rule.ignore ?? 'ignored' });
        break;
      }
      const name = rule.target(m, ctx);
      if (name !== key) report.renamed.push({ from: key, to: name });
      put(name, key, t);
      if (rule.transform) transforms.set(name, rule.transform);
      break;
    }
    if (!done) unmapped.push([key, t]);
  }
  // Unmapped keys go last, so a mapped name always wins a clash report against them.
  for (const [key, t] of unmapped) {
    report.unmapped.push(key);
    put(key, key, t);
  }
  return { tensors, transforms };
}

/** Markdown table of a rule list (used by docs/weights.md; a test checks the docs contain it). */
export function rulesTable(rules: readonly NameRule[], header: readonly [string, string]): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = rules.map((r) => `| \`${esc(r.from)}\` | ${r.to ? `\`${esc(r.to)}\`` : '(ignored)'} | ${esc(r.note ?? '')} |`);
  return [`| ${header[0]} | ${header[1]} | notes |`, '| --- | --- | --- |', ...rows].join('\n');
}
