/** The toy model's random weights as tensors, e.g. to write a weights file for a test. */
import { type HostTensor, type RandomInit, WeightStore, buildModel, createContainer, hostTensor, loadConfig } from '@rcnn/core';
import { register, toyConfig, type ToyConfigOptions } from './register.js';

/**
 * Every tensor the toy model of `options` takes, drawn at random with `seed` exactly as a build
 * without weights draws them: the model is built once with a store that records each `take`.
 */
export function toyWeights(options: ToyConfigOptions = { mask: true }, seed = 1): Map<string, HostTensor> {
  const container = createContainer();
  register(container);
  const taken = new Map<string, HostTensor>();
  const recording = new Proxy(WeightStore.random(seed), {
    get(target, prop) {
      if (prop === 'take') {
        return (key: string, shape: readonly number[], init?: RandomInit) => {
          const data = target.take(key, shape, init);
          taken.set(key, hostTensor('float32', shape, data));
          return data;
        };
      }
      const value: unknown = Reflect.get(target, prop, target);
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  buildModel(loadConfig({ layers: [toyConfig(options)] }), container, recording);
  return taken;
}
