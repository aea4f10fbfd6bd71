/**
 * The detector as a {@link TrainingModel}: the train-mode build (issue 16: losses through each
 * head's training part, `grad.<key>` for every trainable parameter, the parameters as graph inputs)
 * and one training step per replica.
 *
 * With TRAIN.PROPOSALS_IN_GRAPH (the default) a step is one session run: the host draws the
 * training transform and the sampler keys, the training graph makes the proposals, the targets,
 * the losses and the gradients (the body's forward runs once). Otherwise the documented chain of
 * two onnxruntime sessions on the replica's device:
 *
 * 1. host: the training transform of the replica's images and targets (TRAIN.SCALES choice, flips);
 * 2. the proposal pass: the model's inference graph cut after the RPN, with the training top-n,
 *    fed the *current* trainable parameters (they are inputs of this graph too), giving the anchors
 *    and the detached proposals — torchvision detaches proposals, so this pass carries no gradient;
 * 3. host: every head's targets and balanced sampling, drawn from the step's seed;
 * 4. the training graph: losses and gradients.
 *
 * Both graphs are built once per run on the host thread; each replica opens them on its device.
 */
import {
  type DependencyContainer,
  type HostTensor,
  type ImageTargets,
  MODEL_INPUTS,
  PROPOSAL_OUTPUTS,
  type RcnnConfig,
  type RgbImage,
  type WeightStore,
  buildModel,
  buildTrainingModel,
  exposeTrainableParameters,
  featureInputName,
  graphTargetGaps,
  groundTruthFeeds,
  seededRandom,
} from '@rcnn/core';
import { OrtSession } from '../session.js';
import { prepareTrainingBatch, proposalConfig } from '../training.js';
import { TrainingError } from './errors.js';
import { type ReinitialisedTensor, fitInitialWeights, recordingWeights } from './initial-weights.js';
import { type StepResult, TOTAL_LOSS_OUTPUT, type TrainingModel, type TrainingReplica, replicaSessionOptions, runWithLentParameters } from './step.js';

/** One training image with its targets (decoded pixels, original-image coordinates). */
export interface DetectorSample {
  readonly image: RgbImage;
  readonly targets: ImageTargets;
  /** Where it came from (file name), for messages. */
  readonly source?: string;
}

/** Options of {@link detectorTrainingModel}. */
export interface DetectorTrainingOptions {
  readonly config: RcnnConfig;
  /** Container with the model packages registered. */
  readonly container: DependencyContainer;
  /** Initial weights (any reader's store); absent: every tensor drawn with its stage's init. */
  readonly weights?: WeightStore;
  /** Seed of the tensors drawn afresh (default 0). */
  readonly seed?: number;
}

/** The detector's training model, with what the build found. */
export interface DetectorTrainingModel extends TrainingModel<DetectorSample> {
  /** Tensors of the initial weights that did not fit and were drawn afresh. */
  readonly reinitialisedTensors: readonly ReinitialisedTensor[];
  /** Loss outputs in torchvision's loss-dict order. */
  readonly losses: readonly string[];
  /** Registry names resolved per slot. */
  readonly resolved: Readonly<Record<string, string>>;
  /** How a step runs: one session (targets in the graph) or the two-session chain, and why. */
  readonly stepChain: string;
}

/** Prefix of the training graph's inputs that take a frozen body's feature maps. */
const FEATURE_INPUT_PREFIX = featureInputName('');

/** `t` with data of its own: a view into a larger buffer (a weights file) is copied. */
function ownedTensor(t: HostTensor): HostTensor {
  const d = t.data;
  if (d.byteOffset === 0 && d.byteLength === d.buffer.byteLength) return t;
  return { ...t, data: d.slice() } as HostTensor;
}

/** Builds the training graph and the proposal graph of `config` (see the module comment). */
export function detectorTrainingModel(options: DetectorTrainingOptions): DetectorTrainingModel {
  const { config, container } = options;
  const seed = options.seed ?? 0;
  // TRAIN.PROPOSALS_IN_GRAPH needs every training part to build its targets in the graph; a plugin
  // head that builds only host targets trains through the two-session chain (reported).
  const gaps = config.TRAIN.PROPOSALS_IN_GRAPH ? graphTargetGaps(config, container) : [];
  const oneSession = config.TRAIN.PROPOSALS_IN_GRAPH && gaps.length === 0;
  const stepChain = oneSession
    ? 'one session run per step (TRAIN.PROPOSALS_IN_GRAPH)'
    : gaps.length > 0
      ? `proposal pass + host targets + training graph: ${gaps.join(', ')} builds no targets in the graph (TRAIN.PROPOSALS_IN_GRAPH needs buildTargets)`
      : 'proposal pass + host targets + training graph (TRAIN.PROPOSALS_IN_GRAPH false)';
  // Pass 1: which tensors, of which shapes, the graphs ask for.
  const recording = recordingWeights(seed);
  // Two sessions: a frozen body's features come from the proposal pass, which runs the same body on
  // the same images, so the training graph does not run it a second time (nor hold its weights).
  const buildOptions = oneSession ? { targetsInGraph: true } : { featureInputs: config.TRAIN.FREEZE_CONV_BODY };
  buildTrainingModel(config, container, recording.store, buildOptions);
  if (!oneSession) buildModel(proposalConfig(config), container, recording.store, { intermediates: true });
  const fitted = fitInitialWeights(options.weights, recording.requests, seed);

  // Pass 2: the real graphs over the fitted weights.
  const trainingModel = buildTrainingModel(config, container, fitted.store, buildOptions);
  if (trainingModel.parameters.size === 0) throw new TrainingError('the config leaves no parameter to train (TRAIN.FREEZE_CONV_BODY with frozen heads?)');
  const trainable = new Set(trainingModel.parameters.keys());
  let proposalGraph: Uint8Array | undefined;
  let proposalInputs: string[] = [];
  if (!oneSession) {
    const proposalStore = fitted.store.fork();
    proposalStore.setTrainable((key) => trainable.has(key));
    const proposalModel = buildModel(proposalConfig(config), container, proposalStore, { intermediates: true });
    proposalInputs = exposeTrainableParameters(proposalModel.graph, proposalStore).map((p) => p.key);
    proposalGraph = proposalModel.toBytes();
  }
  // The serialised graphs (frozen weights included: ~95 MB each for an R-50-FPN with a frozen body)
  // are needed only to open replicas; releaseGraphs() drops them once every replica is open.
  let graphs: { readonly training: Uint8Array; readonly proposals: Uint8Array | undefined } | undefined = { training: trainingModel.toBytes(), proposals: proposalGraph };

  const losses = trainingModel.outputs.map((o) => o.name).filter((n) => n.startsWith('loss.') && n !== TOTAL_LOSS_OUTPUT);
  const parameters = [...trainingModel.parameters].map(([name, t]) => ({ name, dims: t.dims }));
  const dimsOf = new Map(parameters.map((p) => [p.name, p.dims]));
  // Own copies of exactly what the run keeps: the weights' arrays are views into the whole file's
  // buffer, which would otherwise stay alive (a second model's worth of memory) for the whole run.
  const initial = new Map([...trainingModel.parameters].map(([name, t]) => [name, (t.data as Float32Array).slice()]));
  const fixed = new Map([...fitted.tensors].filter(([key]) => !trainable.has(key)).map(([key, t]) => [key, ownedTensor(t)]));
  const gradientOf = new Map(trainingModel.gradientOutputs.map((o) => [o.slice('grad.'.length), o]));
  for (const p of parameters) if (!gradientOf.has(p.name)) throw new TrainingError(`the training graph has no gradient output for parameter "${p.name}"`);
  const fetches = [...losses, ...trainingModel.gradientOutputs];
  // The step keeps only the host side of the build, not the built graphs (nodes and initializers).
  const targetsOf = trainingModel.targets;
  const rpnKeyWidth = trainingModel.rpnKeyWidth;
  const resolved = trainingModel.resolved;

  /** The losses and gradients of a training-graph run. */
  const stepResult = (outputs: ReadonlyMap<string, HostTensor>, sessionMs: number): StepResult => {
    const out: Record<string, number> = {};
    for (const l of losses) out[l] = Number(outputs.get(l)!.data[0]);
    const gradients = new Map<string, Float32Array>();
    for (const p of parameters) gradients.set(p.name, outputs.get(gradientOf.get(p.name)!)!.data as Float32Array);
    return { losses: out, gradients, sessionMs };
  };

  // Parameters are graph inputs named by their key, in both graphs; lent to each run, not copied.
  const asInputs = (names: Iterable<string>) => [...names].map((name) => ({ name, input: name, dims: dimsOf.get(name)! }));
  const proposalParameters = asInputs(proposalInputs);
  const trainingParameters = asInputs(trainable);

  return {
    parameters,
    initial,
    fixed,
    reinitialised: fitted.reinitialised.map((r) => r.key),
    reinitialisedTensors: fitted.reinitialised,
    losses,
    resolved,
    stepChain,
    releaseGraphs() {
      graphs = undefined;
    },
    async openReplica(o): Promise<TrainingReplica<DetectorSample>> {
      if (!graphs) throw new TrainingError('the training graphs were released (releaseGraphs): open every replica before releasing them');
      const device = o.device.name;
      if (!graphs.proposals) {
        // One session: the training graph makes its own proposals and targets (TRAIN.PROPOSALS_IN_GRAPH).
        const training = await OrtSession.open(graphs.training, replicaSessionOptions(o, 'training'));
        return {
          provider: training.provider,
          fallbackReason: training.fallbackReason,
          release: () => training.release(),
          async step(samples, values, context) {
            if (samples.length === 0) throw new TrainingError(`replica on ${device} got no image`, { iteration: context.iteration });
            const rand = seededRandom(context.seed);
            const batch = prepareTrainingBatch(config, container, samples.map((s) => s.image), samples.map((s) => s.targets), rand);
            const { prepared } = batch;
            const padded = [prepared.images.dims[2]!, prepared.images.dims[3]!] as const;
            const gt = groundTruthFeeds(config, batch.targets, { padded, rpnKeyWidth: rpnKeyWidth(padded), rand });
            const at = { iteration: context.iteration, device };
            const run = await runWithLentParameters(training, { [MODEL_INPUTS.images]: prepared.images, [MODEL_INPUTS.imageSizes]: prepared.imageSizes, ...gt }, trainingParameters, values, fetches, at);
            return stepResult(run.outputs, run.sessionMs);
          },
        };
      }
      const [proposals, training] = await Promise.all([
        OrtSession.open(graphs.proposals, replicaSessionOptions(o, 'proposals')),
        OrtSession.open(graphs.training, replicaSessionOptions(o, 'training')),
      ]);
      // Frozen body: the proposal pass's `backbone.<name>` maps feed the training graph's `features.<name>`.
      const featureLevels = training.inputs.map((i) => i.name).filter((n) => n.startsWith(FEATURE_INPUT_PREFIX)).map((n) => n.slice(FEATURE_INPUT_PREFIX.length));
      const missingLevels = featureLevels.filter((l) => !proposals.outputs.some((out) => out.name === `backbone.${l}`));
      if (missingLevels.length > 0) {
        await Promise.all([proposals.release(), training.release()]);
        throw new TrainingError(`the proposal graph has no output backbone.${missingLevels.join(', backbone.')} for the frozen body's features`);
      }
      return {
        provider: training.provider,
        fallbackReason: training.fallbackReason,
        release: async () => {
          await Promise.all([proposals.release(), training.release()]);
        },
        async step(samples, values, context) {
          if (samples.length === 0) throw new TrainingError(`replica on ${device} got no image`, { iteration: context.iteration });
          const rand = seededRandom(context.seed);
          const batch = prepareTrainingBatch(config, container, samples.map((s) => s.image), samples.map((s) => s.targets), rand);
          const { prepared } = batch;
          // The images go to both sessions; each run moves its feeds, so the first gets a copy.
          const images = (): HostTensor => ({ ...prepared.images, data: prepared.images.data.slice() }) as HostTensor;
          const sizes = (): HostTensor => ({ ...prepared.imageSizes, data: prepared.imageSizes.data.slice() }) as HostTensor;
          const at = { iteration: context.iteration, device };
          const rpn = await runWithLentParameters(
            proposals,
            { [MODEL_INPUTS.images]: images(), [MODEL_INPUTS.imageSizes]: sizes(), [MODEL_INPUTS.originalSizes]: prepared.originalSizes },
            proposalParameters,
            values,
            ['rpn.anchors', PROPOSAL_OUTPUTS.boxesResized, PROPOSAL_OUTPUTS.counts, ...featureLevels.map((l) => `backbone.${l}`)],
            at,
          );
          const features: Record<string, HostTensor> = {};
          for (const l of featureLevels) features[featureInputName(l)] = rpn.outputs.get(`backbone.${l}`)!;
          const anchors = rpn.outputs.get('rpn.anchors')!.data as Float32Array;
          const boxes = rpn.outputs.get(PROPOSAL_OUTPUTS.boxesResized)!;
          const counts = rpn.outputs.get(PROPOSAL_OUTPUTS.counts)!.data as BigInt64Array;
          const k = boxes.dims[1]!;
          const own = samples.map((_, i) => (boxes.data as Float32Array).slice(i * k * 4, (i * k + Number(counts[i])) * 4));
          const host = targetsOf({ anchors, proposals: own, targets: batch.targets, rpnSampling: { rand }, roiSampling: { rand } });
          const run = await runWithLentParameters(training, { [MODEL_INPUTS.images]: prepared.images, [MODEL_INPUTS.imageSizes]: prepared.imageSizes, ...features, ...host.feeds }, trainingParameters, values, fetches, at);
          return stepResult(run.outputs, rpn.sessionMs + run.sessionMs);
        },
      };
    },
  };
}
