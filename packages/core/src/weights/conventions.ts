/**
 * What a weights file says about the model it belongs to: the convention it was trained under
 * (its input normalisation, box arithmetic, anchors, …) and the architecture its tensors imply,
 * as config layers. A Detectron2 checkpoint only gives Detectron2's results under Detectron2's
 * conventions, so weights that know them bring them along (`rcnn predict --weights model_final.pth`).
 */
import { WeightsError } from '../errors.js';
import type { ConfigOverrides } from '../config/config.js';

/** Config layers a weights file brings (applied under the user's config, which wins). */
export interface WeightConventions {
  /** The naming/semantics convention of the file (`detectron2`, `detectron`, `torchvision`). */
  readonly convention: string;
  /** That convention's semantics as core config keys (e.g. Detectron2's BGR input, anchors, paste). */
  readonly conventions: ConfigOverrides;
  /** Architecture keys read from the tensors (class count, heads, widths, conv body). */
  readonly architecture: ConfigOverrides;
}

/** `__metadata__` keys `rcnn convert` (@rcnn/checkpoint) writes into a converted safetensors file. */
export const CONVERTED_WEIGHTS_METADATA = {
  convertedBy: 'converted_by',
  convention: 'source_format',
  conventions: 'suggested_config',
  architecture: 'inferred_config',
} as const;

function parseLayer(text: string | undefined, key: string, file: string): ConfigOverrides {
  if (text === undefined) return {};
  try {
    const value: unknown = JSON.parse(text);
    if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new Error('not a mapping of sections');
    return value as ConfigOverrides;
  } catch (cause) {
    throw new WeightsError(`${file}: __metadata__.${key} is not a config layer (${(cause as Error).message})`, { file, key, cause });
  }
}

/**
 * The conventions recorded in a converted safetensors file's metadata, or undefined for files
 * `rcnn convert` did not write (plain torchvision state dicts, parity fixtures).
 */
export function conventionsFromMetadata(metadata: Readonly<Record<string, string>>, file: string): WeightConventions | undefined {
  const m = CONVERTED_WEIGHTS_METADATA;
  const convention = metadata[m.convention];
  if (metadata[m.convertedBy] === undefined || convention === undefined) return undefined;
  return {
    convention,
    conventions: parseLayer(metadata[m.conventions], m.conventions, file),
    architecture: parseLayer(metadata[m.architecture], m.architecture, file),
  };
}
