import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  type ConvBody,
  RegistryError,
  SLOTS,
  createContainer,
  createReplicaContainer,
  listImplementations,
  registerImplementation,
  replicaInfo,
  resolveImplementation,
} from '../src/index.js';

const fakeBody = (tag: string): ConvBody => ({ isFpn: false, weightPrefixes: [tag], build: () => [] });

describe('registry', () => {
  it('resolves by name and alias, and lists registrations', () => {
    const c = createContainer();
    const body = fakeBody('a');
    registerImplementation(c, SLOTS.convBody, { name: 'ResNet.add_ResNet50_conv4_body', aliases: ['R-50-C4'], provider: 'test', description: 'x', value: body });
    assert.equal(resolveImplementation(c, SLOTS.convBody, 'R-50-C4').value, body);
    assert.equal(resolveImplementation(c, SLOTS.convBody, 'ResNet.add_ResNet50_conv4_body').value, body);
    assert.equal(listImplementations(c, SLOTS.convBody).length, 1);
  });

  it('fails on an unknown name listing what is registered and which package provides the slot', () => {
    const c = createContainer();
    registerImplementation(c, SLOTS.convBody, { name: 'A', provider: '@x/a', description: 'x', value: fakeBody('a') });
    assert.throws(
      () => resolveImplementation(c, SLOTS.convBody, 'B'),
      (e: unknown) =>
        e instanceof RegistryError && /no conv body named "B" \(MODEL.CONV_BODY\)/.test(e.message) && /A \[@x\/a\]/.test(e.message) && /@rcnn\/backbone/.test(e.hint ?? ''),
    );
    assert.throws(() => resolveImplementation(createContainer(), SLOTS.roiMaskHead, 'x'), (e: unknown) => e instanceof RegistryError && /Registered RoI mask head implementations: none/.test(e.message) && /@rcnn\/mask-head/.test(e.hint ?? ''));
  });

  it('refuses a second implementation under a taken name, naming both providers', () => {
    const c = createContainer();
    registerImplementation(c, SLOTS.convBody, { name: 'A', aliases: ['alias'], provider: '@x/a', description: 'x', value: fakeBody('a') });
    assert.throws(
      () => registerImplementation(c, SLOTS.convBody, { name: 'B', aliases: ['alias'], provider: '@x/b', description: 'x', value: fakeBody('b') }),
      /"alias" from @x\/b is already registered by @x\/a/,
    );
  });

  it('gives each replica a child container with its own scope, inheriting registrations', () => {
    const root = createContainer();
    registerImplementation(root, SLOTS.convBody, { name: 'A', provider: 'test', description: 'x', value: fakeBody('a') });
    const r0 = createReplicaContainer(root, 'cuda:0', 0);
    const r1 = createReplicaContainer(root, 'cuda:1', 1);
    const cpu = createReplicaContainer(root, 'cpu', 2);
    assert.equal(replicaInfo(r0)?.scope, 'gpu_0');
    assert.equal(replicaInfo(r1)?.scope, 'gpu_1');
    assert.equal(replicaInfo(cpu)?.scope, 'cpu_2');
    assert.equal(replicaInfo(root), undefined);
    assert.equal(resolveImplementation(r1, SLOTS.convBody, 'A').name, 'A');
  });
});
