/**
 * The head conformance kit: checks that a registered implementation of a model slot keeps the
 * slot's contract, so a plugin (or a built-in head) can be trusted inside `buildModel` before any
 * parity data exists for it. It builds the stage alone on synthetic inputs, runs it in ONNX
 * Runtime for several batch and image sizes, and checks
 *
 * - registration: the name resolves, an unknown name fails listing the registered ones, a second
 *   package cannot take the name silently, `register()` is idempotent;
 * - outputs: what the implementation declares (channels, spatial scales, levels, `dim`) against
 *   what the graph computes, plus the slot's layout rules (proposal padding and order, detection
 *   batch index, mask range, …) and every tap's dtype, declared shape (rank, fixed sizes) and row count;
 * - names: two replicas built from per-device child containers (core's `createReplicaContainer`)
 *   keep every internal name inside their replica scope and never collide;
 * - weights: every key read is under the declared `weightPrefixes`, the full list of keys (and
 *   shapes) read, keys of a given weights file the stage ignores, and that a missing or mis-shaped
 *   tensor fails with a `WeightsError` naming it;
 * - determinism: the same input gives bit-identical outputs twice, from a rebuilt graph and from
 *   the other replica.
 *
 * Use it from node:test: `assertConformance(await runConformance({ slot, name, container, config }))`.
 */
import { AssertionError } from 'node:assert';
import {
  type Blob,
  type BuildContext,
  ConfigError,
  type DependencyContainer,
  GraphBuilder,
  type HostTensor,
  type ImageBatch,
  type Implementation,
  MODEL_INPUTS,
  type RandomInit,
  type RcnnConfig,
  RegistryError,
  SLOTS,
  type Slot,
  type TapSpec,
  WeightStore,
  WeightsError,
  createContainer,
  createReplicaContainer,
  listImplementations,
  registerImplementation,
  replicaInfo,
  resolveImplementation,
} from '@rcnn/core';
import { type ConformanceCase, type FeatureSpec, batchFeeds, conformanceCases, emptyCase, seededRandom } from './conformance-inputs.js';
import {
  type AdapterEnv,
  type ConformanceExpectations,
  type ConformanceSlotId,
  SLOT_ADAPTERS,
  type SlotAdapter,
  type StageIO,
  checkDeclaredMaps,
} from './conformance-slots.js';
import { createTestSession, runModel } from './ort.js';

export type { ConformanceCase, FeatureSpec } from './conformance-inputs.js';
export type { ConformanceExpectations, ConformanceSlotId } from './conformance-slots.js';

/** What to check. Only `slot`, `name`, `container` and `config` are required. */
export interface ConformanceOptions {
  /** The slot (`'roi-box-head'` or `SLOTS.roiBoxHead`). */
  readonly slot: ConformanceSlotId | Slot<unknown>;
  /** Registry name (or alias) of the implementation. */
  readonly name: string;
  /** Container the implementation (and anything it resolves, e.g. an FPN body's bottom-up body) is registered in. */
  readonly container: DependencyContainer;
  /** Config the stage is built with (load it with the package's config sections registered). */
  readonly config: RcnnConfig;
  /** Weights (default: `WeightStore.random(seed)`). With a file, keys under the prefixes the stage ignores are reported. */
  readonly weights?: WeightStore;
  /** Seed of random weights and synthetic inputs (default 0). */
  readonly seed?: number;
  /** The package's `register`: checked to be idempotent and to make the name resolvable in a fresh container. */
  readonly register?: (container: DependencyContainer) => void;
  /** Padded input sizes (H, W) to run (default [[64, 96], [96, 128]]); multiples of INPUT.SIZE_DIVISIBILITY. */
  readonly imageSizes?: readonly (readonly [number, number])[];
  /** Batch sizes to run (default [1, 2]). */
  readonly batchSizes?: readonly number[];
  /** RoIs / detections / proposals of the first image of a batch (later images get fewer; default 6). */
  readonly rowsPerImage?: number;
  /** Feature maps fed to FPN / RPN / RoI stages (default: from the config, see `defaultFeatures`). */
  readonly features?: readonly FeatureSpec[];
  /** Width of the box-head representation fed to `roi-box-outputs` (default 16). */
  readonly boxHeadDim?: number;
  /** The exact set of weight keys the implementation says it reads; checked when given. */
  readonly declaredKeys?: readonly string[];
  /** Prefixes to check keys against when the slot's contract declares none (slot `fpn`). */
  readonly weightPrefixes?: readonly string[];
  /** Do not fail when a weights file has keys under the prefixes that the stage ignores. */
  readonly allowUnusedWeights?: boolean;
  /** Expected output sizes where they differ from the config's. */
  readonly expect?: ConformanceExpectations;
  /** ORT intra-op threads (default 1). */
  readonly threads?: number;
}

/** One check and its outcome. */
export interface ConformanceCheck {
  /** Stable id (`registry.unknown-name`, `scope.replica`, `run.N=2 64x96`, …). */
  readonly id: string;
  readonly title: string;
  readonly pass: boolean;
  /** What was measured or what is wrong. */
  readonly detail: string;
}

/** A weight the stage read, with the exact shape it asked for. */
export interface ConsumedWeight {
  readonly key: string;
  readonly shape: readonly number[];
}

/** Result of {@link runConformance}. */
export interface ConformanceReport {
  readonly slot: string;
  readonly name: string;
  /** Provider package of the implementation (undefined if it did not resolve). */
  readonly provider: string | undefined;
  readonly passed: boolean;
  readonly checks: readonly ConformanceCheck[];
  readonly weights: {
    readonly source: string;
    /** Declared `weightPrefixes` (or the option). */
    readonly prefixes: readonly string[];
    /** Every key read, in order, with its shape. */
    readonly consumed: readonly ConsumedWeight[];
    /** Keys of a weights file under the prefixes that the stage did not read. */
    readonly unusedInPrefixes: readonly string[];
  };
  /** Intermediates the stage taps. */
  readonly taps: readonly TapSpec[];
  /** Output shapes of every case run. */
  readonly cases: readonly { readonly label: string; readonly outputs: Readonly<Record<string, readonly number[]>> }[];
  readonly durationMs: number;
}

const message = (e: unknown): string => (e instanceof Error ? `${e.name}: ${e.message}` : String(e));

/** A stage built in one graph. */
interface BuiltStage {
  readonly graph: GraphBuilder;
  readonly io: StageIO;
  readonly taps: readonly TapSpec[];
  readonly bytes: Uint8Array;
  readonly scope: string;
}

/** A WeightStore whose `take` / `takeOptional` calls are recorded with their shapes. */
function recordingStore(store: WeightStore, log: Map<string, readonly number[]>): WeightStore {
  return new Proxy(store, {
    get(target, prop) {
      if (prop === 'take') {
        return (key: string, shape: readonly number[], init?: RandomInit): Float32Array => {
          const data = target.take(key, shape, init);
          log.set(key, [...shape]);
          return data;
        };
      }
      if (prop === 'takeOptional') {
        return (key: string, shape: readonly number[], init?: RandomInit): Float32Array | undefined => {
          const data = target.takeOptional(key, shape, init);
          if (data) log.set(key, [...shape]);
          return data;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
}

function buildStage(adapter: SlotAdapter, value: unknown, container: DependencyContainer, config: RcnnConfig, weights: WeightStore, env: AdapterEnv): BuiltStage {
  const scope = replicaInfo(container)?.scope ?? '';
  const g = new GraphBuilder({ name: `conformance_${adapter.slot.id.replace(/-/g, '_')}`, ...(scope ? { scope } : {}) });
  const images = g.input(MODEL_INPUTS.images, 'float32', ['N', 3, 'H', 'W']);
  // A conv body (and an FPN) must build into the features-only net, which has no image sizes.
  const batch: ImageBatch = adapter.imagesOnly
    ? {
        images,
        get imageSizes(): Blob {
          throw new ConfigError(`a ${adapter.slot.title} must not read image_sizes: it has to build into the features-only net (buildFeaturesNet)`);
        },
        get originalSizes(): Blob {
          throw new ConfigError(`a ${adapter.slot.title} must not read original_sizes: it has to build into the features-only net (buildFeaturesNet)`);
        },
      }
    : {
        images,
        imageSizes: g.input(MODEL_INPUTS.imageSizes, 'int64', ['N', 2]),
        originalSizes: g.input(MODEL_INPUTS.originalSizes, 'int64', ['N', 2]),
      };
  const taps: TapSpec[] = [];
  const tapBlobs = new Map<string, Blob>();
  const ctx: BuildContext = {
    graph: g,
    config,
    weights,
    container,
    batch,
    tap(name, blob, dtype, layout, dims) {
      // buildModel refuses a second tap of one name; so does the kit.
      if (tapBlobs.has(name)) throw new ConfigError(`intermediate "${name}" is tapped twice`);
      taps.push({ name, dtype, layout, dims: [...dims] });
      tapBlobs.set(name, blob);
    },
  };
  const io = g.withScope(adapter.stageScope, () => adapter.build(ctx, value, env));
  for (const o of io.outputs) g.output(o.blob, o.name, o.dtype, o.dims);
  for (const t of taps) g.output(tapBlobs.get(t.name)!, t.name, t.dtype, t.dims);
  return { graph: g, io, taps, bytes: g.toModelProto(), scope };
}

/** Internal (non-public) names of a built stage. */
function internalNames(stage: BuiltStage): string[] {
  const pub = new Set([...stage.graph.declaredInputs.map((i) => i.name), ...stage.graph.declaredOutputs.map((o) => o.name)]);
  return stage.graph.allNames().filter((n) => !pub.has(n));
}

function sameTensor(a: HostTensor, b: HostTensor): boolean {
  if (a.dtype !== b.dtype || a.dims.join(',') !== b.dims.join(',')) return false;
  const x = Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength);
  const y = Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength);
  return x.equals(y);
}

/** Names of outputs that differ between two runs (bitwise). */
function differences(a: ReadonlyMap<string, HostTensor>, b: ReadonlyMap<string, HostTensor>): string[] {
  const names = new Set([...a.keys(), ...b.keys()]);
  return [...names].filter((n) => {
    const x = a.get(n);
    const y = b.get(n);
    return !x || !y || !sameTensor(x, y);
  });
}

const list = (items: readonly string[], max = 8): string => (items.length <= max ? items.join(', ') : `${items.slice(0, max).join(', ')}, … (${items.length} in all)`);

/**
 * Runs every conformance check on one implementation and returns a report (it does not throw for
 * a non-conforming implementation; see {@link assertConformance}). Throws only for a slot the kit
 * does not know.
 */
export async function runConformance(options: ConformanceOptions): Promise<ConformanceReport> {
  const started = performance.now();
  const slotId = typeof options.slot === 'string' ? options.slot : options.slot.id;
  const adapter = (SLOT_ADAPTERS as Readonly<Record<string, SlotAdapter>>)[slotId];
  if (!adapter) throw new ConfigError(`the conformance kit has no checks for slot "${slotId}"; it checks ${Object.keys(SLOT_ADAPTERS).join(', ')}`);
  const { container, config, name } = options;
  const seed = options.seed ?? 0;
  const checks: ConformanceCheck[] = [];
  const add = (id: string, title: string, pass: boolean, detail: string): boolean => {
    checks.push({ id, title, pass, detail });
    return pass;
  };
  const baseWeights = options.weights ?? WeightStore.random(seed);
  const consumed = new Map<string, readonly number[]>();
  let prefixes: readonly string[] = options.weightPrefixes ?? [];
  let unusedInPrefixes: string[] = [];
  let taps: readonly TapSpec[] = [];
  const cases: { label: string; outputs: Record<string, readonly number[]> }[] = [];
  let provider: string | undefined;
  const finish = (): ConformanceReport => ({
    slot: slotId,
    name,
    provider,
    passed: checks.every((c) => c.pass),
    checks,
    weights: { source: baseWeights.description, prefixes, consumed: [...consumed].map(([key, shape]) => ({ key, shape })), unusedInPrefixes },
    taps,
    cases,
    durationMs: performance.now() - started,
  });

  // 1. Registration and lookup.
  let impl: Implementation<unknown>;
  try {
    impl = resolveImplementation(container, adapter.slot, name);
    provider = impl.provider;
    add('registry.resolve', `"${name}" resolves in slot ${slotId}`, true, `${impl.name}${impl.aliases?.length ? ` (aliases ${impl.aliases.join(', ')})` : ''} from ${impl.provider}`);
  } catch (e) {
    add('registry.resolve', `"${name}" resolves in slot ${slotId}`, false, message(e));
    return finish();
  }
  const probe = `${impl.name}.__conformance_unknown__`;
  try {
    resolveImplementation(container, adapter.slot, probe);
    add('registry.unknown-name', 'an unknown name fails listing the registered names', false, `resolving "${probe}" did not fail`);
  } catch (e) {
    const ok = e instanceof RegistryError && e.message.includes(probe) && e.message.includes(impl.name);
    add('registry.unknown-name', 'an unknown name fails listing the registered names', ok, ok ? e.message : `expected a RegistryError naming "${probe}" and listing "${impl.name}", got ${message(e)}`);
  }
  try {
    registerImplementation(container.createChildContainer(), adapter.slot, { name: impl.name, provider: '@rcnn/testing (conformance probe)', description: 'probe', value: {} });
    add('registry.clash', 'another implementation cannot take the name silently', false, `a second implementation named "${impl.name}" was accepted`);
  } catch (e) {
    const ok = e instanceof RegistryError && e.message.includes(impl.provider);
    add('registry.clash', 'another implementation cannot take the name silently', ok, ok ? e.message : `expected a RegistryError naming ${impl.provider}, got ${message(e)}`);
  }
  if (options.register) {
    try {
      const fresh = createContainer();
      options.register(fresh);
      options.register(fresh);
      const again = resolveImplementation(fresh, adapter.slot, name);
      add('registry.register', 'register(container) registers the name and is idempotent', true, `registered twice in a fresh container; resolves to ${again.name}`);
    } catch (e) {
      add('registry.register', 'register(container) registers the name and is idempotent', false, message(e));
    }
  }

  // 2. Builds: replica 0 (weights recorded), replica 1, and replica 0 again.
  const env: AdapterEnv = { config, features: options.features, boxHeadDim: options.boxHeadDim ?? 16, expect: options.expect ?? {} };
  const r0 = createReplicaContainer(container, 'cpu', 0);
  const r1 = createReplicaContainer(container, 'cpu', 1);
  const storeA = baseWeights.fork();
  let a: BuiltStage;
  let b: BuiltStage;
  let c: BuiltStage;
  try {
    a = buildStage(adapter, impl.value, r0, config, recordingStore(storeA, consumed), env);
    b = buildStage(adapter, impl.value, r1, config, baseWeights.fork(), env);
    c = buildStage(adapter, impl.value, r0, config, baseWeights.fork(), env);
    taps = a.taps;
    const stats = a.graph.stats();
    add('build', 'the stage builds', true, `${stats.nodes} nodes, ${stats.initializers} initializers, ${stats.parameters} parameters, ${taps.length} taps`);
  } catch (e) {
    add('build', 'the stage builds', false, message(e));
    return finish();
  }

  // 3. What the implementation declared.
  const declared = a.io.declared;
  if (declared.kind === 'features') {
    const problems = checkDeclaredMaps(declared);
    add(
      'declared.features',
      'declared feature maps are consistent (names, levels, scales, order)',
      problems.length === 0,
      problems.length ? problems.join('; ') : declared.maps.map((m) => `'${m.name}' level ${m.level} scale 1/${1 / m.spatialScale} ${m.channels}ch`).join(', '),
    );
    if (slotId === 'conv-body') {
      const ok = declared.isFpn === config.FPN.FPN_ON;
      add('declared.is-fpn', 'isFpn agrees with FPN.FPN_ON of the config', ok, ok ? `isFpn ${declared.isFpn}` : `isFpn is ${declared.isFpn} but FPN.FPN_ON is ${config.FPN.FPN_ON}: buildModel will refuse this config`);
    }
  }
  if (declared.kind === 'masks' || declared.kind === 'keypoints') {
    const pp = declared.hostPostprocessor;
    const known = listImplementations(container, SLOTS.hostPostprocessor).some((i) => i.name === pp || (i.aliases ?? []).includes(pp));
    add('declared.host-postprocessor', 'the host post-processor it names is registered', pp.length > 0 && known, pp ? `"${pp}"${known ? '' : ' is not registered in slot host-postprocessor'}` : 'no host post-processor named');
  }
  if (declared.kind === 'box-head') {
    add('declared.dim', 'the representation width is a positive integer', Number.isInteger(declared.dim) && declared.dim > 0, `dim ${declared.dim}`);
  }

  // 4. Names stay inside the replica scope; replicas do not collide.
  {
    const problems: string[] = [];
    for (const stage of [a, b]) {
      const outside = internalNames(stage).filter((n) => !n.startsWith(`${stage.scope}/`));
      if (outside.length) problems.push(`${outside.length} name(s) of replica ${stage.scope} are outside its scope: ${list(outside)}`);
    }
    add('scope.replica', 'every node, blob and initializer name carries the replica scope', problems.length === 0, problems.length ? problems.join('; ') : `${internalNames(a).length} names under ${a.scope}/ and ${b.scope}/`);
  }
  {
    // Graph inputs and outputs keep public names, which two replicas would share: only the model
    // builder (and this kit) may declare them, never a stage.
    const ownOutputs = new Set([...a.io.outputs.map((o) => o.name), ...a.taps.map((t) => t.name)]);
    const modelInputs = new Set<string>(Object.values(MODEL_INPUTS));
    const extraInputs = a.graph.declaredInputs.map((i) => i.name).filter((n) => !modelInputs.has(n) && !n.startsWith('conformance.'));
    const extraOutputs = a.graph.declaredOutputs.map((o) => o.name).filter((n) => !ownOutputs.has(n));
    const extra = [...extraInputs.map((n) => `input ${n}`), ...extraOutputs.map((n) => `output ${n}`)];
    add('scope.public-names', 'the stage declares no graph inputs or outputs of its own (use ctx.tap)', extra.length === 0, extra.length ? `declares ${list(extra)}` : 'none');
  }
  {
    const namesA = internalNames(a);
    const namesB = new Set(internalNames(b));
    const shared = namesA.filter((n) => namesB.has(n));
    const strip = (names: Iterable<string>, scope: string): string[] => [...names].map((n) => n.slice(scope.length + 1)).sort();
    const same = strip(namesA, a.scope).join('\n') === strip(namesB, b.scope).join('\n');
    add(
      'scope.collide',
      'the graphs of two replicas share no name and are the same up to the scope',
      shared.length === 0 && same,
      shared.length ? `shared names: ${list(shared)}` : same ? 'disjoint, identical after the scope' : 'the two replicas build different graphs (names differ after stripping the scope)',
    );
  }

  // 5. Weights.
  const declaredPrefixes = (impl.value as { weightPrefixes?: readonly string[] }).weightPrefixes;
  prefixes = declaredPrefixes ?? options.weightPrefixes ?? [];
  {
    const keys = [...consumed.keys()];
    if (prefixes.length === 0) {
      const pass = keys.length === 0 || declaredPrefixes === undefined;
      add(
        'weights.prefixes',
        'every weight read is under the declared weightPrefixes',
        pass,
        keys.length === 0 ? 'reads no weights' : `the ${slotId} contract declares no weightPrefixes (pass weightPrefixes to check them); reads ${keys.length} keys`,
      );
    } else {
      const outside = keys.filter((k) => !prefixes.some((p) => k.startsWith(p)));
      add('weights.prefixes', 'every weight read is under the declared weightPrefixes', outside.length === 0, outside.length ? `outside [${prefixes.join(', ')}]: ${list(outside)}` : `${keys.length} keys under [${prefixes.join(', ')}]`);
    }
    if (options.declaredKeys) {
      const want = new Set(options.declaredKeys);
      const missing = [...want].filter((k) => !consumed.has(k));
      const extra = keys.filter((k) => !want.has(k));
      add(
        'weights.declared-keys',
        'the keys read are exactly the declared keys',
        missing.length === 0 && extra.length === 0,
        missing.length || extra.length ? `declared but not read: ${list(missing) || 'none'}; read but not declared: ${list(extra) || 'none'}` : `${keys.length} keys`,
      );
    }
    if (!baseWeights.isRandom && prefixes.length > 0) {
      unusedInPrefixes = storeA.unusedKeys(prefixes);
      const pass = unusedInPrefixes.length === 0 || options.allowUnusedWeights === true;
      add('weights.unused', 'the weights file has no key under the prefixes that the stage ignores', pass, unusedInPrefixes.length ? `ignored: ${list(unusedInPrefixes)}` : `${baseWeights.description}: none ignored`);
    }
    if (keys.length > 0) {
      const zeros = (shape: readonly number[]): HostTensor => ({ dtype: 'float32', dims: [...shape], data: new Float32Array(shape.reduce((x, y) => x * y, 1)) });
      const all = new Map<string, HostTensor>([...consumed].map(([k, s]) => [k, zeros(s)]));
      const victim = keys[0]!;
      const expectWeightsError = (id: string, title: string, tensors: Map<string, HostTensor>, what: string): void => {
        try {
          buildStage(adapter, impl.value, r0, config, WeightStore.fromTensors(tensors, `conformance weights (${what})`), env);
          add(id, title, false, `the stage built with ${what} "${victim}"`);
        } catch (e) {
          const ok = e instanceof WeightsError && e.message.includes(victim);
          add(id, title, ok, ok ? e.message : `expected a WeightsError naming "${victim}", got ${message(e)}`);
        }
      };
      const without = new Map(all);
      without.delete(victim);
      expectWeightsError('weights.missing', 'a missing tensor fails with a WeightsError naming it', without, 'a missing');
      const misshaped = new Map(all);
      const shape = consumed.get(victim)!;
      misshaped.set(victim, zeros([shape[0]! + 1, ...shape.slice(1)]));
      expectWeightsError('weights.shape', 'a mis-shaped tensor fails with a WeightsError naming it', misshaped, 'a mis-shaped');
      try {
        const exact = WeightStore.fromTensors(all, 'conformance weights (exactly the keys read)');
        buildStage(adapter, impl.value, r0, config, exact, env);
        exact.assertAllUsed();
        add('weights.complete', 'the keys read are all it needs (builds from exactly them, using every one)', true, `${keys.length} keys`);
      } catch (e) {
        add('weights.complete', 'the keys read are all it needs (builds from exactly them, using every one)', false, message(e));
      }
    }
  }

  // 6. Run in ORT: every case, plus an empty one for the RoI-level slots.
  const threads = options.threads ?? 1;
  const sizes = options.imageSizes ?? [
    [64, 96],
    [96, 128],
  ];
  const batchSizes = options.batchSizes ?? [1, 2];
  const runCases: ConformanceCase[] = conformanceCases(sizes, batchSizes, options.rowsPerImage ?? 6);
  if (adapter.roiLevel) runCases.push(emptyCase(sizes[0]!, Math.max(...batchSizes)));
  const inputNames = new Set(a.graph.declaredInputs.map((i) => i.name));
  const feedsOf = (cs: ConformanceCase, index: number): Record<string, HostTensor> => {
    const rand = seededRandom(seed * 7919 + index + 1);
    const all = { ...batchFeeds(cs, rand), ...adapter.feeds(cs, env, rand) };
    return Object.fromEntries(Object.entries(all).filter(([k]) => inputNames.has(k)));
  };
  const sessionA = await createTestSession(a.bytes, threads);
  let first: Map<string, HostTensor> | undefined;
  try {
    for (const [index, cs] of runCases.entries()) {
      const id = `run.${cs.label}`;
      const title = `outputs of ${cs.label} (rows ${cs.rowsPerImage.join('/')}) keep the ${slotId} contract`;
      let out: Map<string, HostTensor>;
      try {
        out = await runModel(sessionA, feedsOf(cs, index));
      } catch (e) {
        add(id, title, false, `ORT failed: ${message(e)}`);
        continue;
      }
      if (index === 0) first = out;
      const problems = adapter.check(cs, out, a.io, env);
      for (const t of a.taps) {
        const got = out.get(t.name);
        if (!got) {
          problems.push(`tap ${t.name}: missing`);
          continue;
        }
        if (got.dtype !== t.dtype) problems.push(`tap ${t.name}: declared ${t.dtype}, computes ${got.dtype}`);
        // The declared shape is what an exported model tells other tools: its rank and fixed sizes must be right.
        const fixedOk = t.dims.length === got.dims.length && t.dims.every((d, i) => typeof d !== 'number' || d === got.dims[i]);
        if (!fixedOk) problems.push(`tap ${t.name}: declared shape [${t.dims.join(', ')}], computes [${got.dims.join(', ')}]`);
        const rows = adapter.tapRows(t.layout, cs, out);
        if (rows !== undefined && got.dims[0] !== rows) problems.push(`tap ${t.name} (layout ${t.layout}): ${got.dims[0]} rows, expected ${rows}`);
        if (t.layout === 'per-image-proposals' && got.dims.length < 2) problems.push(`tap ${t.name} (layout per-image-proposals): rank ${got.dims.length}, expected [N, K, …]`);
      }
      cases.push({ label: cs.label, outputs: Object.fromEntries([...out].map(([k, v]) => [k, v.dims])) });
      const shapes = a.io.outputs.map((o) => `${o.name.replace(/^conformance\./, '')} [${out.get(o.name)?.dims.join(', ') ?? '?'}]`).join(', ');
      add(id, title, problems.length === 0, problems.length ? list(problems, 6) : shapes);
    }

    // 7. Determinism.
    if (first) {
      const feeds0 = feedsOf(runCases[0]!, 0);
      const again = await runModel(sessionA, feeds0);
      const d1 = differences(first, again);
      add('determinism.rerun', 'the same input gives bit-identical outputs twice', d1.length === 0, d1.length ? `differ: ${list(d1)}` : `${first.size} outputs identical`);
      const sameBytes = Buffer.from(a.bytes).equals(Buffer.from(c.bytes));
      const outC = await runModel(c.bytes, feeds0);
      const d2 = differences(first, outC);
      add(
        'determinism.rebuild',
        'a rebuilt graph is byte-identical and computes the same outputs',
        sameBytes && d2.length === 0,
        `${sameBytes ? 'ModelProto identical' : 'ModelProto bytes differ between two builds'}; ${d2.length ? `outputs differ: ${list(d2)}` : 'outputs identical'}`,
      );
      const outB = await runModel(b.bytes, feeds0);
      const d3 = differences(first, outB);
      add('determinism.replica', 'the other replica computes the same outputs', d3.length === 0, d3.length ? `differ: ${list(d3)}` : 'outputs identical');
    }
  } finally {
    await sessionA.release();
  }
  return finish();
}

/** The report as readable text: a verdict line, every check, the weights read and the taps. */
export function formatConformanceReport(report: ConformanceReport): string {
  const failed = report.checks.filter((c) => !c.pass).length;
  const lines = [
    `conformance of ${report.slot} "${report.name}"${report.provider ? ` (${report.provider})` : ''}: ${report.passed ? 'PASS' : `FAIL (${failed} of ${report.checks.length} checks)`} in ${(report.durationMs / 1000).toFixed(2)} s`,
  ];
  for (const c of report.checks) lines.push(`  ${c.pass ? 'ok  ' : 'FAIL'} ${c.id}: ${c.title}${c.detail ? `\n         ${c.detail}` : ''}`);
  const w = report.weights;
  lines.push(`  weights: ${w.source}; prefixes [${w.prefixes.join(', ')}]; ${w.consumed.length} keys read`);
  for (const k of w.consumed) lines.push(`    ${k.key} [${k.shape.join(', ')}]`);
  if (w.unusedInPrefixes.length) lines.push(`  ignored keys of the weights file: ${w.unusedInPrefixes.join(', ')}`);
  lines.push(`  taps: ${report.taps.length ? report.taps.map((t) => `${t.name} (${t.dtype}, ${t.layout})`).join(', ') : 'none'}`);
  return lines.join('\n');
}

/** Throws an AssertionError holding the formatted report when any check failed. */
export function assertConformance(report: ConformanceReport): void {
  if (!report.passed) throw new AssertionError({ message: formatConformanceReport(report), actual: report.checks.filter((c) => !c.pass).map((c) => c.id), expected: [], operator: 'conformance' });
}
