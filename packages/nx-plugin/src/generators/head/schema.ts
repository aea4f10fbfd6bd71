/** Options of the `head` generator (mirrors generators/head/schema.json). */

/** The model slots a head plugin can fill (the host-side slots and the box outputs are not scaffolded). */
export const HEAD_SLOTS = ['conv-body', 'fpn', 'rpn-head', 'roi-box-head', 'roi-mask-head', 'roi-keypoint-head'] as const;

/** One of {@link HEAD_SLOTS}. */
export type HeadSlot = (typeof HEAD_SLOTS)[number];

/** What `nx g @rcnn/nx-plugin:head <name> --slot <slot>` accepts. */
export interface HeadGeneratorSchema {
  /** Package directory name, kebab-case (`my-box-head`). */
  readonly name: string;
  /** Slot the head fills. */
  readonly slot: HeadSlot;
  /** Parent directory of the package (default `packages`). */
  readonly directory?: string;
  /** npm name of the package (default `@rcnn/<name>`). */
  readonly importPath?: string;
  /** Registry name the head registers under (default `<name>`). */
  readonly registryName?: string;
  /** Do not write `.changeset/<name>-initial.md`. */
  readonly skipChangeset?: boolean;
}

/**
 * Config sections of @rcnn/core: a plugin section may not take one of these names (kept here so
 * the generator does not load @rcnn/core; a test checks the list against core's CORE_SECTIONS).
 */
export const CORE_SECTION_NAMES = ['MODEL', 'INPUT', 'TEST', 'RPN', 'FPN', 'RESNETS', 'FAST_RCNN', 'MRCNN', 'KRCNN', 'TRAIN', 'SOLVER', 'LIMITS'] as const;
