/**
 * @rcnn/core: the ground every rcnn-node package stands on: the ONNX graph builder, the DI slot
 * registry, the Detectron-style config, weights I/O, the layers heads are written with, shared
 * detection graph functions and the model builder.
 *
 * This index is the package's whole public API, name by name: what applications, plugin authors
 * and the sibling packages use. Implementation detail (graph passes, float16 conversion, the
 * protobuf encoder, built-in gradient rules) lives under `src/internal/` and is not exported.
 */
export type { DependencyContainer } from 'tsyringe';

// Errors: every failure is an RcnnError subclass naming the file / key / shape it concerns.
export {
  at,
  ConfigError,
  GraphError,
  InputError,
  OutputError,
  RcnnError,
  RegistryError,
  TargetError,
  WeightsError,
} from './errors.js';

// The ONNX graph builder, typed operator builders (`ops`) and host tensors.
export {
  DATA_TYPE_SIZE,
  type DataType,
  elementCount,
  hostTensor,
  type HostTensor,
  ONNX_DATA_TYPE,
  type TensorArray,
  type TypedArrayOf,
} from './graph/dtypes.js';
export {
  attr,
  type AttributeInput,
  type AttributeValue,
  type Blob,
  DEFAULT_OPSET,
  type Dim,
  GraphBuilder,
  type GraphNode,
  type GraphStats,
  IR_VERSION,
  type ModelOptions,
  type NodeOptions,
  type InitializerOptions,
  type NodeOutputs,
  type Subgraph,
  type SubgraphOutput,
  type ValueInfo,
} from './graph/builder.js';
export * as ops from './graph/onnx-ops.js';
export { decodeModelProto } from './onnx/proto.js';

// Configuration: Detectron-style sections, loading and layering (YAML, Detectron2 configs, parity cases).
export {
  type BoolField,
  type ConfigField,
  type ConfigSection,
  defineSection,
  type EnumField,
  field,
  type FieldValue,
  type FloatField,
  type IntField,
  type NumberListField,
  type NumberListListField,
  type SectionFields,
  type SectionValues,
  type StringField,
} from './config/schema.js';
export {
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
} from './config/sections.js';
export {
  type ConfigOverrides,
  configToObject,
  type ConfigValue,
  type CoreConfig,
  describeConfig,
  loadConfig,
  type LoadConfigOptions,
  type RcnnConfig,
  sectionValues,
} from './config/config.js';
export {
  caseConfigLayer,
  type CaseContext,
  type CaseMapper,
  type CaseMappingOptions,
  type CaseSection,
  isCaseDocument,
} from './config/case.js';
export {
  DETECTRON2_DEFAULT_PIXEL_MEANS,
  type Detectron2Config,
  detectron2ConfigFile,
  detectron2ConventionsLayer,
  summariseIgnoredKeys,
} from './config/detectron2.js';

// The DI registry: slots, implementations, config sections and weights readers.
export {
  caseMappers,
  configSections,
  createContainer,
  createReplicaContainer,
  type Implementation,
  listImplementations,
  registerConfigSection,
  registeredWeightsReaders,
  registerImplementation,
  registerWeightsReader,
  replicaInfo,
  type ReplicaInfo,
  resolveImplementation,
  type Slot,
  SLOTS,
  WEIGHTS_READERS,
  type WeightsReader,
} from './registry/registry.js';

// Model contracts (what each slot's implementation builds), extras, dims and graph I/O names.
export type {
  BoxHeadOutput,
  BuildContext,
  ConvBody,
  Detections,
  FeatureMap,
  FeatureMaps,
  FeaturePyramid,
  HostPostprocessor,
  HostTargets,
  ImageBatch,
  ImageDetections,
  ImageTransform,
  LossTerm,
  PreparedBatch,
  Proposals,
  RawOutputs,
  RgbImage,
  RoiBoxHead,
  RoiBoxOutputs,
  RoiBoxOutputsTraining,
  RoiHeadTraining,
  RoiImageSample,
  RoiKeypointHead,
  RoiMaskHead,
  Rois,
  RoiTargetInput,
  RpnHead,
  RpnGraphTargetInput,
  RpnHeadTraining,
  RpnTargetInput,
  SamplingSource,
  TapLayout,
  TapSpec,
  TrainingBuildContext,
  TrainingRois,
} from './model/contracts.js';
export {
  EXTRA_KEYS,
  extraKey,
  type ExtraKey,
  getExtra,
  keypointSet,
  type KeypointSet,
  type MaskCrop,
  type MaskSet,
  setExtra,
} from './model/extras.js';
export { DIMS, featureMapDims, levelSizeDims } from './model/dims.js';
export { DETECTION_OUTPUTS, MODEL_INPUTS, MODEL_METADATA, PROPOSAL_OUTPUTS } from './model/names.js';
export { readModelMetadata } from './onnx/metadata.js';

// Building the inference and training graphs.
export {
  buildFeaturesNet,
  buildModel,
  type BuildOptions,
  type BuiltFeaturesNet,
  type BuiltModel,
  featureOutputName,
  type ModelOutput,
} from './model/build.js';
export {
  buildTrainingModel,
  featureInputName,
  graphTargetGaps,
  type BuiltTrainingModel,
  lossOutputName,
  TOTAL_LOSS,
  type TrainingBuildOptions,
  trainingProposalConfig,
  type TrainingTargetInput,
} from './model/build-train.js';

// Training targets: anchor/proposal matching, balanced sampling, target resizing (host side).
export {
  type BalancedSample,
  BELOW_LOW_THRESHOLD,
  BETWEEN_THRESHOLDS,
  boxIouFloat32,
  checkInjectedSample,
  encodeBox,
  matchBoxes,
  type MatcherOptions,
  sampleBalanced,
  type SamplerOptions,
} from './training/matching.js';
export { flipTargets, type ImageTargets, type ResizedTargets, resizeTargets, validateTargets } from './training/targets.js';
export {
  boxIouGraph,
  encodeBoxesGraph,
  GT_TRAINING_INPUTS,
  type GroundTruthBlobs,
  type GroundTruthFeedOptions,
  groundTruthFeeds,
  matchBoxesGraph,
  type PositiveRoiBlobs,
  replayKeys,
  type RoiGraphSample,
  type RoiReplay,
  sampleBalancedGraph,
  type SampledRoiBlobs,
  sampleRoisGraph,
} from './training/graph-sampling.js';
export { int64Tensor, ROI_TRAINING_INPUTS, type RoiSampling, sampleRois } from './training/roi-sampling.js';
export * as losses from './training/losses.js';

// Weights: safetensors I/O, the weight store, seeded random inits.
export {
  decodeEntry,
  MAX_SAFETENSORS_HEADER_BYTES,
  parseSafetensors,
  readSafetensorsFile,
  SAFETENSORS_DTYPE_SIZE,
  type SafetensorsDType,
  type SafetensorsEntry,
  type SafetensorsFile,
  writeSafetensors,
} from './weights/safetensors.js';
export {
  drawRandom,
  gaussian,
  type NonFinitePolicy,
  type RandomInit,
  seededRandom,
  type WeightSource,
  WeightStore,
  type WeightStoreOptions,
} from './weights/store.js';
export type { WeightConventions } from './weights/conventions.js';

// Detection graph functions shared by the heads: box coding, clipping, NMS, multi-scale RoIAlign.
export {
  batchedNmsKeep,
  type BatchedNmsOptions,
  type BoxCoderOptions,
  clipBoxes,
  decodeBoxes,
  imageBounds,
  keepLargeBoxes,
} from './detection/boxes.js';
export { multiScaleRoiAlign, type RoiPoolerOptions } from './detection/multi-scale-roi-align.js';
export { batchIndexGrid, compactValid, originalScaleFactors, proposalsToRois } from './detection/batch.js';
export { roundHalfEven } from './numeric.js';

// COCO RLE.
export {
  type CocoRle,
  compressRle,
  decodeRle,
  decompressRle,
  encodeRle,
  rleArea,
  RleBuilder,
  rleCountsFromString,
  rleCountsToString,
  type UncompressedRle,
} from './formats/rle.js';

// File I/O helpers every package shares.
export { type AtomicWriteIO, type AtomicWriteOptions, writeFileAtomic, writeFileAtomicSync } from './io/atomic-write.js';
export { checkOutputFile, ensureOutputDirectory, fileIdentity, type NamedInput, sameFileAs } from './io/output-paths.js';
export { printable } from './io/printable.js';
export { checkModelMemory, estimateModelMemory, type MemoryEstimate, type MemoryPart } from './config/memory.js';

// Layers (Detectron2's `layers/` + `poolers.py`): what a head is written with.
export {
  type Activation,
  conv2d,
  conv2dOptions,
  conv2dParameters,
  type Conv2dSpec,
  convTranspose,
  convTransposeParameters,
  type ConvTransposeSpec,
  type LayerSpec,
  linear,
  linearParameters,
  type LinearSpec,
} from './layers/conv.js';
export { upsampleBilinear } from './layers/interpolate.js';
export {
  convNorm,
  type ConvNormSpec,
  NORM_RANDOM_INIT,
  type NormKind,
  normParameters,
  type NormSpec,
} from './layers/norm.js';
export {
  type PooledRois,
  roiPooler,
  type RoiPoolerCallOptions,
  roiPoolerOptions,
  type RoiPoolerSection,
  sharedChannels,
} from './layers/pooler.js';
export {
  convNormActivationKeys,
  HE_INIT,
  ONE_INIT,
  parameter,
  type ParameterSpec,
  readParameter,
  resolveKey,
  sequentialKey,
  xavierFill,
  ZERO_INIT,
} from './layers/weights.js';

// Gradients: per-operator rules, the backward graph and trainable parameters.
export {
  type GradientContext,
  type GradientDataType,
  type GradientRule,
  NON_DIFFERENTIABLE,
  registerGradientRule,
  registerNonDifferentiable,
  type SlotSelector,
} from './autodiff/registry.js';
export { buildGradients, type GradientOptions, type Gradients, reduceToShapeOf, zerosLike } from './autodiff/gradients.js';
export {
  addParameterGradients,
  exposeTrainableParameters,
  gradientOutputName,
  type ParameterGradientOptions,
  type ParameterInput,
  trainableConfigLayer,
  trainableParameters,
} from './autodiff/trainable.js';
