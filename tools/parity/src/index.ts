export * from './compare-case.js';
