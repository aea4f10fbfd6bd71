/** A {@link BuildContext} for testing one stage in isolation. */
import {
  type Blob,
  type BuildContext,
  type DataType,
  type Dim,
  GraphBuilder,
  type ImageBatch,
  MODEL_INPUTS,
  type RcnnConfig,
  type TapLayout,
  type TapSpec,
  WeightStore,
  createContainer,
  type DependencyContainer,
} from '@rcnn/core';


/** A build context plus what the stage tapped. */
export interface TestContext extends BuildContext {
  readonly taps: Map<string, { blob: Blob; spec: TapSpec }>;
  /** Declares every tap as a graph output (call before serialising). */
  outputTaps(): void;
}

/**
 * A context with a fresh graph whose inputs are the image batch (`images`, `image_sizes`,
 * `original_sizes`); stage-specific inputs (reference features, proposals…) are added by the test
 * with `ctx.graph.input(...)`.
 */
export function createTestContext(config: RcnnConfig, options: { weights?: WeightStore; container?: DependencyContainer; scope?: string } = {}): TestContext {
  const graph = new GraphBuilder({ name: 'test', ...(options.scope ? { scope: options.scope } : {}) });
  const batch: ImageBatch = {
    images: graph.input(MODEL_INPUTS.images, 'float32', ['N', 3, 'H', 'W']),
    imageSizes: graph.input(MODEL_INPUTS.imageSizes, 'int64', ['N', 2]),
    originalSizes: graph.input(MODEL_INPUTS.originalSizes, 'int64', ['N', 2]),
  };
  const taps = new Map<string, { blob: Blob; spec: TapSpec }>();
  return {
    graph,
    config,
    weights: options.weights ?? WeightStore.random(0),
    container: options.container ?? createContainer(),
    batch,
    taps,
    tap(name: string, blob: Blob, dtype: DataType, layout: TapLayout, dims: readonly Dim[]) {
      taps.set(name, { blob, spec: { name, dtype, layout, dims: [...dims] } });
    },
    outputTaps() {
      for (const [name, { blob, spec }] of taps) graph.output(blob, name, spec.dtype, spec.dims);
    },
  };
}
