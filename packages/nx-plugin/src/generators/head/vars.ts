/** The names and versions every template of the `head` generator is rendered with. */
import type { HeadSlot } from './schema.js';

/** A workspace package the generated one depends on. */
export interface PackageRef {
  /** npm name (`@rcnn/core`). */
  readonly name: string;
  /** Semver range on it (`^0.1.0`). */
  readonly range: string;
  /** Path of its directory relative to the generated package (`../core`), for tsconfig references. */
  readonly path: string;
}

/** Everything a template needs. */
export interface TemplateVars {
  /** Directory name, kebab-case (`my-box-head`). */
  readonly name: string;
  readonly slot: HeadSlot;
  /** npm name (`@rcnn/my-box-head`). */
  readonly importPath: string;
  /** Registry name of the implementation. */
  readonly registryName: string;
  /** File name of the implementation (`my-box-head`). */
  readonly fileName: string;
  /** PascalCase (`MyBoxHead`), for types. */
  readonly className: string;
  /** camelCase (`myBoxHead`), for values and functions. */
  readonly propertyName: string;
  /** UPPER_SNAKE (`MY_BOX_HEAD`): the config section's name and the prefix of exported constants. */
  readonly constantName: string;
  /** Path from the package to the workspace root (`../..`). */
  readonly rootPath: string;
  readonly core: PackageRef;
  readonly testing: PackageRef;
  /** Package whose host post-processor the head's outputs go to (mask and keypoint heads). */
  readonly host: PackageRef | undefined;
  /** onnxruntime-node version the tests run on (as @rcnn/testing's). */
  readonly ortVersion: string;
}
