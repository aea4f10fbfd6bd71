import 'reflect-metadata';
import { type DependencyContainer, type InjectionToken, container as rootContainer } from 'tsyringe';
import type { ConfigSection } from '../config/schema.js';
import type { ConfigOverrides } from '../config/config.js';
import type { CaseContext, CaseMapper, CaseSection } from '../config/case.js';
import { RegistryError } from '../errors.js';
import type { WeightStore, WeightStoreOptions } from '../weights/store.js';
import type {
  ConvBody,
  FeaturePyramid,
  HostPostprocessor,
  ImageTransform,
  RoiBoxHead,
  RoiBoxOutputs,
  RoiKeypointHead,
  RoiMaskHead,
  RpnHead,
} from '../model/contracts.js';

/** A named implementation of a slot, as a package registers it. */
export interface Implementation<T> {
  /** Registry name (Detectron's config name where one exists, e.g. `fast_rcnn_heads.add_roi_2mlp_head`). */
  readonly name: string;
  /** Other names that resolve to the same implementation (friendly names, torchvision class names). */
  readonly aliases?: readonly string[];
  /** npm package that registers it (shown in listings and errors). */
  readonly provider: string;
  /** One line on what it is. */
  readonly description: string;
  /** The implementation itself. */
  readonly value: T;
  /**
   * Parity-case types this implementation maps (`model.box.head.type` of a case.json, e.g.
   * `ResNetRes5Head`), so `npm run parity` / `loadParityCase` can check a new head type.
   */
  readonly caseTypes?: readonly string[];
  /** Config overrides for a case section of one of {@link caseTypes} (see `CaseMapper`). */
  readonly fromCase?: (section: CaseSection, context: CaseContext) => ConfigOverrides;
}

/** A pluggable slot of the model: its DI token, what it is, and which package provides the built-ins. */
export interface Slot<T> {
  /** Stable id used in docs and the generator (`roi-box-head`). */
  readonly id: string;
  /** Human name (`RoI box head`). */
  readonly title: string;
  /** Config key whose value names the implementation (`FAST_RCNN.ROI_BOX_HEAD`). */
  readonly configKey: string;
  /** Package whose `register()` adds the built-in implementations. */
  readonly builtInProvider: string;
  /** DI token under which implementations are registered (multi-registration). */
  readonly token: InjectionToken<Implementation<T>>;
}

function defineSlot<T>(id: string, title: string, configKey: string, builtInProvider: string): Slot<T> {
  return { id, title, configKey, builtInProvider, token: Symbol.for(`rcnn:slot:${id}`) as InjectionToken<Implementation<T>> };
}

/** The slots of the seed model, Detectron's `add_*` hooks. */
export const SLOTS = {
  /** Conv body (`MODEL.CONV_BODY`): backbone, with FPN for `FPN.*` names. */
  convBody: defineSlot<ConvBody>('conv-body', 'conv body', 'MODEL.CONV_BODY', '@rcnn/backbone (ResNet) and @rcnn/fpn (FPN.* bodies)'),
  /** Feature pyramid over a conv body (`FPN.IMPL`). */
  fpn: defineSlot<FeaturePyramid>('fpn', 'FPN', 'FPN.IMPL', '@rcnn/fpn'),
  /** RPN head + proposal generation (`RPN.HEAD`). */
  rpnHead: defineSlot<RpnHead>('rpn-head', 'RPN head', 'RPN.HEAD', '@rcnn/rpn'),
  /** RoI box head (`FAST_RCNN.ROI_BOX_HEAD`): RoI features to a representation vector. */
  roiBoxHead: defineSlot<RoiBoxHead>('roi-box-head', 'RoI box head', 'FAST_RCNN.ROI_BOX_HEAD', '@rcnn/box-head'),
  /** Box predictor + detection post-processing (`FAST_RCNN.OUTPUTS`). */
  roiBoxOutputs: defineSlot<RoiBoxOutputs>('roi-box-outputs', 'RoI box outputs', 'FAST_RCNN.OUTPUTS', '@rcnn/box-head'),
  /** RoI mask head (`MRCNN.ROI_MASK_HEAD`). */
  roiMaskHead: defineSlot<RoiMaskHead>('roi-mask-head', 'RoI mask head', 'MRCNN.ROI_MASK_HEAD', '@rcnn/mask-head'),
  /** RoI keypoint head (`KRCNN.ROI_KEYPOINTS_HEAD`). */
  roiKeypointHead: defineSlot<RoiKeypointHead>('roi-keypoint-head', 'RoI keypoint head', 'KRCNN.ROI_KEYPOINTS_HEAD', '@rcnn/keypoint-head'),
  /** Host-side image transform (`INPUT.TRANSFORM`). */
  imageTransform: defineSlot<ImageTransform>('image-transform', 'image transform', 'INPUT.TRANSFORM', '@rcnn/backbone'),
  /** Host-side result decoders (mask pasting, keypoint decoding), looked up by the names a built model lists. */
  hostPostprocessor: defineSlot<HostPostprocessor>('host-postprocessor', 'host post-processor', '(listed by the built model)', '@rcnn/mask-head, @rcnn/keypoint-head'),
} as const;

/** Every slot, for listings. */
export const ALL_SLOTS: readonly Slot<unknown>[] = Object.values(SLOTS) as Slot<unknown>[];

/** Token under which packages register their extra config sections (multi-registration). */
export const CONFIG_SECTIONS: InjectionToken<ConfigSection> = Symbol.for('rcnn:config-sections');

/** Creates a fresh root container for a model (never the global tsyringe container, so tests and apps do not leak). */
export function createContainer(): DependencyContainer {
  return rootContainer.createChildContainer();
}

/** Registered implementations of a slot in `container` (including those inherited from parents). */
export function listImplementations<T>(container: DependencyContainer, slot: Slot<T>): Implementation<T>[] {
  return container.isRegistered(slot.token, true) ? container.resolveAll(slot.token) : [];
}

/**
 * Registers an implementation of a slot. A name or alias already taken in this container by a
 * different implementation is an error naming both providers (plugins must not shadow silently).
 */
export function registerImplementation<T>(container: DependencyContainer, slot: Slot<T>, impl: Implementation<T>): void {
  if (!impl.name) throw new RegistryError(`an implementation of the ${slot.title} slot from ${impl.provider} has no name`);
  const names = [impl.name, ...(impl.aliases ?? [])];
  for (const existing of listImplementations(container, slot)) {
    if (existing.value === impl.value && existing.name === impl.name) return; // idempotent re-registration
    const clash = names.find((n) => n === existing.name || (existing.aliases ?? []).includes(n));
    if (clash !== undefined) {
      throw new RegistryError(
        `${slot.title} name "${clash}" from ${impl.provider} is already registered by ${existing.provider} (as ${existing.name})`,
        { hint: 'give the plugin implementation its own name, or register only one of the two packages' },
      );
    }
  }
  container.register(slot.token, { useValue: impl });
}

/**
 * Finds the implementation of `slot` registered under `name` (or an alias). Fails with the list of
 * registered names and the package that provides the slot's built-ins, the cure for Detectron2's
 * "No object named X found in registry" when a module was never imported.
 */
export function resolveImplementation<T>(container: DependencyContainer, slot: Slot<T>, name: string): Implementation<T> {
  const all = listImplementations(container, slot);
  const found = all.find((i) => i.name === name || (i.aliases ?? []).includes(name));
  if (found) return found;
  const registered = all.length === 0 ? 'none' : all.map((i) => `${i.name}${i.aliases?.length ? ` (aliases: ${i.aliases.join(', ')})` : ''} [${i.provider}]`).join('; ');
  throw new RegistryError(
    `no ${slot.title} named "${name}" (${slot.configKey}). Registered ${slot.title} implementations: ${registered}.`,
    { hint: `built-in ${slot.title} implementations come from ${slot.builtInProvider}: call its register(container) before building` },
  );
}

/** Registers a package's extra config section (idempotent for the same object). */
export function registerConfigSection(container: DependencyContainer, section: ConfigSection): void {
  const existing = configSections(container).find((s) => s.name === section.name);
  if (existing === section) return;
  if (existing) {
    throw new RegistryError(`config section ${section.name} from ${section.provider} is already registered by ${existing.provider}`);
  }
  container.register(CONFIG_SECTIONS, { useValue: section });
}

/** The extra config sections registered in `container` (pass them to `loadConfig`). */
export function configSections(container: DependencyContainer): ConfigSection[] {
  return container.isRegistered(CONFIG_SECTIONS, true) ? container.resolveAll(CONFIG_SECTIONS) : [];
}

/** The device a replica runs on and the name scope of its graph. */
export interface ReplicaInfo {
  /** `cpu`, `cuda:0`, … */
  readonly device: string;
  /** Index of the replica among all replicas of the model. */
  readonly index: number;
  /** Name scope of the replica's graph (Caffe2 style: `gpu_0`, `cpu_0`). */
  readonly scope: string;
}

/** DI token of the {@link ReplicaInfo} of a per-device child container. */
export const REPLICA: InjectionToken<ReplicaInfo> = Symbol.for('rcnn:replica');

/**
 * A child container for one model replica (Detectron's per-GPU build loop): it inherits every
 * registration of `parent` and carries its own {@link ReplicaInfo}.
 */
export function createReplicaContainer(parent: DependencyContainer, device: string, index: number): DependencyContainer {
  const child = parent.createChildContainer();
  const scope = device.startsWith('cuda') ? `gpu_${device.split(':')[1] ?? index}` : `${device.replace(/[^a-z0-9]/gi, '_')}_${index}`;
  child.register(REPLICA, { useValue: { device, index, scope } });
  return child;
}

/** The replica info of a container, if it is a replica container. */
export function replicaInfo(container: DependencyContainer): ReplicaInfo | undefined {
  return container.isRegistered(REPLICA, true) ? container.resolve(REPLICA) : undefined;
}

/** Reads one weights file format into a {@link WeightStore} (torchvision state-dict names). */
export interface WeightsReader {
  /** Format name shown in messages (`safetensors`, `PyTorch checkpoint`). */
  readonly format: string;
  /** File extensions it reads, lower case with the dot (`.safetensors`). */
  readonly extensions: readonly string[];
  /** Package that registered it. */
  readonly provider: string;
  read(path: string, options: WeightStoreOptions): WeightStore | Promise<WeightStore>;
}

/**
 * DI token of the weights readers (multi-registration). Weight-format packages register here, the
 * runtime picks the reader by file extension: neither imports the other.
 */
export const WEIGHTS_READERS: InjectionToken<WeightsReader> = Symbol.for('rcnn:weights-reader');

/** Registers a reader for a weights format (e.g. @rcnn/checkpoint's `.pth` and `.pkl`); idempotent per provider and format. */
export function registerWeightsReader(container: DependencyContainer, reader: WeightsReader): void {
  if (registeredWeightsReaders(container).some((r) => r.provider === reader.provider && r.format === reader.format)) return;
  container.register(WEIGHTS_READERS, { useValue: reader });
}

/** The weights readers registered in `container` (including its parents). */
export function registeredWeightsReaders(container: DependencyContainer): WeightsReader[] {
  return container.isRegistered(WEIGHTS_READERS, true) ? container.resolveAll(WEIGHTS_READERS) : [];
}

/**
 * The parity-case mappers of every implementation registered in `container` that declares
 * `caseTypes` and `fromCase` (for `loadConfig({ caseMappers })` / `loadParityCase(dir, { container })`).
 */
export function caseMappers(container: DependencyContainer): CaseMapper[] {
  const out: CaseMapper[] = [];
  for (const slot of Object.values(SLOTS) as Slot<unknown>[]) {
    for (const impl of listImplementations(container, slot)) {
      if (impl.caseTypes && impl.fromCase) out.push({ name: impl.name, provider: impl.provider, slot: slot.id, caseTypes: impl.caseTypes, fromCase: impl.fromCase });
    }
  }
  return out;
}
