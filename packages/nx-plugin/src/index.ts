/** @rcnn/nx-plugin: nx generators for rcnn-node head plugins (`nx g @rcnn/nx-plugin:head <name> --slot <slot>`). */
export { SLOT_TEMPLATES, headGenerator, normalizeOptions, renderHeadPackage } from './generators/head/generator.js';
export { CORE_SECTION_NAMES, HEAD_SLOTS, type HeadGeneratorSchema, type HeadSlot } from './generators/head/schema.js';
export type { BadConfig, FieldTemplate, SlotTemplate } from './generators/head/templates/slot-template.js';
export type { PackageRef, TemplateVars } from './generators/head/vars.js';
