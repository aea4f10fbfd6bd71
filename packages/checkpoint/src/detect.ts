/**
 * Which naming convention a state dict uses, from its keys: each convention has names no other
 * one uses; the convention with the most such keys wins, and a tie or no match is an error that
 * asks for an explicit `from`.
 */
import { printable } from '@rcnn/core';
import { CheckpointError } from './errors.js';
import type { CheckpointFormat } from './report.js';

const SIGNATURES: Readonly<Record<CheckpointFormat, RegExp>> = {
  torchvision:
    /^(backbone\.body\.|backbone\.fpn\.(inner|layer)_blocks\.|rpn\.head\.|roi_heads\.(box_head\.(fc6|fc7|res5)\.|mask_predictor\.|keypoint_predictor\.|mask_head\.\d|keypoint_head\.\d))/,
  detectron2:
    /^(backbone\.(bottom_up\.)?(stem|res\d)\.|backbone\.(fpn_lateral|fpn_output|top_block)|proposal_generator\.|roi_heads\.(box_head\.fc\d\.|res5\.|mask_head\.(mask_fcn|deconv|predictor)|keypoint_head\.(conv_fcn|score_lowres)))/,
  detectron:
    /^(conv1_w$|res_conv1_bn_|res\d_\d+_branch|fpn_(inner_|res|\d_)|conv_rpn|rpn_(cls_logits|bbox_pred)_|fc[67]_[wb]$|cls_score_[wb]$|bbox_pred_[wb]$|_\[mask\]_|conv5_mask_|mask_fcn_logits_|conv_fcn\d|kps_score_lowres_)/,
};

/** Counts the keys matching each convention's signature. */
export function formatScores(keys: Iterable<string>): Record<CheckpointFormat, number> {
  const scores: Record<CheckpointFormat, number> = { torchvision: 0, detectron2: 0, detectron: 0 };
  for (const k of keys) {
    for (const f of Object.keys(SIGNATURES) as CheckpointFormat[]) if (SIGNATURES[f].test(k)) scores[f]++;
  }
  return scores;
}

/** Picks the convention of `keys`, with the reason; fails when no convention or several tie. */
export function detectFormat(keys: readonly string[], source: string): { format: CheckpointFormat; reason: string } {
  const scores = formatScores(keys);
  const ranked = (Object.entries(scores) as [CheckpointFormat, number][]).sort((a, b) => b[1] - a[1]);
  const [best, second] = ranked;
  if (best === undefined || second === undefined || best[1] === 0 || best[1] === second[1]) {
    throw new CheckpointError(
      'name-map',
      `${source}: cannot tell the naming convention of its ${keys.length} keys (matches: ${ranked.map(([f, n]) => `${f} ${n}`).join(', ')}; first keys: ${keys.slice(0, 5).map((k) => printable(k)).join(', ')})`,
      { file: source, hint: 'convert it naming its convention: rcnn convert <in> <out.safetensors> --from torchvision|detectron2|detectron (library: from option)' },
    );
  }
  return { format: best[0], reason: `auto-detected: ${best[1]} of ${keys.length} keys use ${best[0]} names` };
}
