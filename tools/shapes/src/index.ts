/** Synthetic shapes datasets (tools/shapes): generation in memory and on disk. */
export { SHAPE_CATEGORIES, SHAPE_OKS_SIGMAS, type ShapesImage, type ShapesOptions, type ShapesSplit, generateShapes } from './shapes.js';
export { type ShapesDatasetOptions, type WrittenSplit, writeShapesDataset, writeShapesSplit } from './write.js';
