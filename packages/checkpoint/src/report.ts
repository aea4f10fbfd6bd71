/**
 * What reading a checkpoint did to its keys: every rename, row rewrite, synthesized tensor,
 * ignored entry and unmapped key, so nothing is ever dropped silently.
 */
import type { ContainerKind } from './containers.js';
import { printable } from '@rcnn/core';

/** A weights naming convention. */
export type CheckpointFormat = 'torchvision' | 'detectron2' | 'detectron';

/** Every {@link CheckpointFormat}. */
export const CHECKPOINT_FORMATS: readonly CheckpointFormat[] = ['torchvision', 'detectron2', 'detectron'];

/** How Detectron's AffineChannel (`_bn_s`, `_bn_b`) is written out. */
export type AffineChannelForm =
  /** weight = scale, bias = bias only; the config must use `RESNETS.NORM: AffineChannel`. */
  | 'affine'
  /** also running_mean = 0 and running_var = 1, for `RESNETS.NORM: FrozenBN` with `FROZEN_BN_EPS: 0`. */
  | 'frozen-bn';

/** Facts read from the checkpoint that pick config values (see `suggestedConfigLayer`). */
export interface ConfigHints {
  /** A torchvision COCO_V1 checkpoint trained with FrozenBatchNorm2d eps 0 (recognised by file name). */
  legacyTorchvisionCoco?: boolean;
  /** Detectron2's `pixel_mean` / `pixel_std` buffers, when the checkpoint has them. */
  pixelMean?: number[];
  pixelStd?: number[];
  /** FPN body or Detectron's C4 layout (res5 in the box head). */
  layout?: 'fpn' | 'c4';
  /** The AffineChannel form produced for Detectron weights. */
  affineChannel?: AffineChannelForm;
}

/** The report of one read. */
export interface CheckpointReport {
  /** File path or buffer description. */
  readonly source: string;
  readonly container: ContainerKind;
  format: CheckpointFormat;
  /** How the format was chosen (requested, or which keys matched). */
  formatReason: string;
  /** Keys that led from the top-level object to the state dict (`['model']`, `['blobs']`, `[]`). */
  stateDictPath: string[];
  /** Tensors in the result. */
  tensorCount: number;
  readonly renamed: { from: string; to: string }[];
  /** Tensors whose values were rewritten (row permutations, added background rows). */
  readonly transformed: { key: string; note: string }[];
  /** Tensors that did not exist in the file (running stats of AffineChannel, background rows). */
  readonly synthesized: { key: string; note: string }[];
  /** Keys no rule maps: kept under their original name, so a model build reports them as unused. */
  readonly unmapped: string[];
  /** Entries deliberately not loaded, with the reason (optimizer state, num_batches_tracked, non-tensors). */
  readonly ignored: { key: string; reason: string }[];
  readonly notes: string[];
  readonly hints: ConfigHints;
}

/** An empty report. */
export function newReport(source: string, container: ContainerKind): CheckpointReport {
  return {
    source,
    container,
    format: 'torchvision',
    formatReason: '',
    stateDictPath: [],
    tensorCount: 0,
    renamed: [],
    transformed: [],
    synthesized: [],
    unmapped: [],
    ignored: [],
    notes: [],
    hints: {},
  };
}

/** A human-readable summary (what `rcnn convert` prints). `verbose` lists every key. */
export function formatReport(report: CheckpointReport, verbose = false): string {
  const lines = [
    `${report.source}: ${report.tensorCount} tensors, ${report.format} naming (${report.formatReason}), ${report.container}` +
      (report.stateDictPath.length > 0 ? `, state dict under ${report.stateDictPath.map((k) => `["${k}"]`).join('')}` : ''),
  ];
  const section = (title: string, items: string[]): void => {
    if (items.length === 0) return;
    lines.push(`${title} (${items.length}):`);
    const shown = verbose ? items : items.slice(0, 10);
    // Keys come from the file: a megabyte-long key or a NUL byte must not reach the terminal raw.
    for (const it of shown) lines.push(`  ${printable(it, 240)}`);
    if (shown.length < items.length) lines.push(`  … ${items.length - shown.length} more`);
  };
  section('renamed', report.renamed.map((r) => `${r.from} -> ${r.to}`));
  section('rewritten', report.transformed.map((t) => `${t.key}: ${t.note}`));
  section('synthesized', report.synthesized.map((t) => `${t.key}: ${t.note}`));
  section('UNMAPPED (kept under their own names; the model will report them unused)', report.unmapped);
  section('ignored', report.ignored.map((t) => `${t.key}: ${t.reason}`));
  section('notes', report.notes);
  return lines.join('\n');
}
