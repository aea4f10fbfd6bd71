/** What the generator knows about each slot: the contract to implement and a small, real implementation of it. */
import type { TemplateVars } from '../vars.js';

/** A key of the generated config section. */
export interface FieldTemplate {
  readonly key: string;
  /** TypeScript source of the field (`field.int(256, '…', { min: 1 })`). */
  readonly source: string;
  /** Default as shown in the README. */
  readonly shown: string;
  readonly meaning: string;
}

/** A config layer (TypeScript object literal source) that must fail, and the key the ConfigError must name. */
export interface BadConfig {
  readonly layer: (v: TemplateVars) => string;
  readonly key: (v: TemplateVars) => string;
  /** What is wrong, for the test's title. */
  readonly what: string;
}

/** The per-slot part of a generated package. */
export interface SlotTemplate {
  /** Property of core's `SLOTS` (`roiBoxHead`). */
  readonly slotConst: string;
  /** Contract interface in core (`RoiBoxHead`). */
  readonly contract: string;
  /** Config key that selects the implementation (`FAST_RCNN.ROI_BOX_HEAD`). */
  readonly configKey: string;
  /** Human name of the slot (`RoI box head`). */
  readonly title: string;
  /** One line on what the generated implementation computes. */
  readonly summary: string;
  /** State-dict prefixes of its weights. */
  readonly prefixes: readonly string[];
  /** Host post-processor its outputs need, and the package that registers it. */
  readonly host?: { readonly packageName: string; readonly dir: string; readonly postprocessor: string };
  /** Keys of the plugin's config section. */
  readonly fields: readonly FieldTemplate[];
  /** Checks between keys, as TypeScript statements inside `settings(config)` (`s` holds the section's values). */
  readonly checks: (v: TemplateVars) => string;
  /** Core config keys the implementation reads (README). */
  readonly coreKeys: readonly string[];
  /** The implementation file `src/<name>.ts`. */
  readonly implementation: (v: TemplateVars) => string;
  /** The implementation has a training part (targets and a loss): the conformance test also runs the kit's training checks. */
  readonly training?: boolean;
  /** Config layer of the tests (TypeScript object literal source): selects the implementation, small sizes. */
  readonly testLayer: (v: TemplateVars) => string;
  /** Expression (using `config`) for the arguments after `config` of `<name>WeightKeys`, as the conformance kit feeds the stage. */
  readonly keysArgs: string;
  /** Names imported from @rcnn/testing by the conformance test for {@link keysArgs}. */
  readonly keysImports: readonly string[];
  /** A value loadConfig rejects (type or bounds). */
  readonly badValue: BadConfig;
  /** Values that pass loadConfig but contradict each other (the settings check). */
  readonly badCombination: BadConfig;
}

/** Names derived from the vars that every implementation template uses. */
export function ids(v: TemplateVars): { readonly C: string; readonly p: string; readonly K: string } {
  return { C: v.constantName, p: v.propertyName, K: v.className };
}
