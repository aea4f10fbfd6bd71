import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CheckpointError, readCheckpoint } from '../src/index.js';
import { PickleBuilder } from './helpers/pickle-builder.js';

/**
 * Bytes written by CPython 3 + numpy 2 (not by this package), so the reader is checked against
 * the real thing:
 *   obj = {'model': {'roi_heads.box_head.fc1.weight': np.arange(6, dtype='<f4').reshape(2, 3),
 *                    'roi_heads.box_head.fc1.bias': np.asfortranarray(np.arange(6, dtype='<f4').reshape(3, 2)),
 *                    'roi_heads.box_predictor.cls_score.bias': np.array([1.5, -2.5, 7.0], dtype='<f4')},
 *          '__author__': 'test'}
 *   pickle.dumps(obj, protocol=2).hex(); pickle.dumps(obj, protocol=5).hex()
 */
const PROTOCOL_2 =
  '80027d71002858050000006d6f64656c71017d710228581d000000726f695f68656164732e626f785f686561642e6663312e7765696768747103636e756d70792e5f636f72652e6d756c746961727261790a5f7265636f6e7374727563740a7104636e756d70790a6e6461727261790a71054b00857106635f636f646563730a656e636f64650a7107580100000062710858060000006c6174696e31710986710a52710b87710c52710d284b014b024b0386710e636e756d70790a64747970650a710f5802000000663471108988877111527112284b0358010000003c71134e4e4e4affffffff4affffffff4b0074711462896807581b000000000000000000c2803f00000040000040400000c280400000c2a0407115680986711652711774711862581b000000726f695f68656164732e626f785f686561642e6663312e626961737119680468054b0085711a680b87711b52711c284b014b034b0286711d6812886807581b00000000000000000000400000c280400000c2803f000040400000c2a040711e680986711f527120747121625826000000726f695f68656164732e626f785f707265646963746f722e636c735f73636f72652e626961737122680468054b00857123680b877124527125284b014b038571266812896807580f0000000000c3803f000020c3800000c3a0407127680986712852712974712a6275580a0000005f5f617574686f725f5f712b580400000074657374712c752e';
const PROTOCOL_5 =
  '80059573010000000000007d94288c056d6f64656c947d94288c1d726f695f68656164732e626f785f686561642e6663312e776569676874948c136e756d70792e5f636f72652e6e756d65726963948c0b5f66726f6d62756666657294939428961800000000000000000000000000803f0000004000004040000080400000a040948c056e756d7079948c0564747970659493948c02663494898887945294284b038c013c944e4e4e4affffffff4affffffff4b007494624b024b0386948c014394749452948c1b726f695f68656164732e626f785f686561642e6663312e62696173946806289618000000000000000000000000000040000080400000803f000040400000a04094680d4b034b0286948c014694749452948c26726f695f68656164732e626f785f707265646963746f722e636c735f73636f72652e6269617394680628960c000000000000000000c03f000020c00000e04094680d4b038594681174945294758c0a5f5f617574686f725f5f948c047465737494752e';

const hex = (s: string): Uint8Array => Uint8Array.from(Buffer.from(s, 'hex'));

describe('numpy pickles written by Python', () => {
  for (const [name, bytes] of [
    ['protocol 2 (_codecs.encode bytes, GLOBAL, memo)', PROTOCOL_2],
    ['protocol 5 (FRAME, STACK_GLOBAL, MEMOIZE, _frombuffer, BYTEARRAY8)', PROTOCOL_5],
  ] as const) {
    it(`reads ${name} as Detectron2 weights`, () => {
      const r = readCheckpoint(hex(bytes), { source: name });
      assert.equal(r.format, 'detectron2');
      assert.deepEqual(r.report.stateDictPath, ['model']);
      const fc6 = r.tensors.get('roi_heads.box_head.fc6.weight')!;
      assert.deepEqual(fc6.dims, [2, 3]);
      assert.deepEqual([...(fc6.data as Float32Array)], [0, 1, 2, 3, 4, 5]);
      // Fortran-ordered array comes out row-major with the same values as numpy shows.
      const bias = r.tensors.get('roi_heads.box_head.fc6.bias')!;
      assert.deepEqual(bias.dims, [3, 2]);
      assert.deepEqual([...(bias.data as Float32Array)], [0, 1, 2, 3, 4, 5]);
      // Detectron2's background-last class order becomes torchvision's background-first.
      assert.deepEqual([...(r.tensors.get('roi_heads.box_predictor.cls_score.bias')!.data as Float32Array)], [7, 1.5, -2.5]);
    });
  }

  it('reads Python 2 style str keys and array data (Detectron blobs)', () => {
    const data = Array.from(new Uint8Array(Float32Array.of(0.5, -1).buffer));
    const p = new PickleBuilder()
      .proto(2)
      .emptyDict()
      .binstring('blobs')
      .emptyDict()
      .binstring('fc6_b')
      .global('numpy.core.multiarray', '_reconstruct')
      .global('numpy', 'ndarray')
      .int(0)
      .tuple1()
      .binstring('b')
      .raw(0x87)
      .reduce()
      .mark()
      .int(1)
      .int(2)
      .tuple1()
      .global('numpy', 'dtype')
      .binstring('f4')
      .int(0)
      .int(1)
      .raw(0x87)
      .reduce()
      .mark()
      .int(3)
      .binstring('<')
      .none()
      .none()
      .none()
      .raw(0x4a, 0xff, 0xff, 0xff, 0xff, 0x4a, 0xff, 0xff, 0xff, 0xff)
      .int(0)
      .tuple()
      .build()
      .bool(false)
      .raw(0x54, data.length, 0, 0, 0, ...data)
      .tuple()
      .build()
      .setitem()
      .setitem()
      .stop()
      .toBytes();
    const r = readCheckpoint(p, { source: 'model_final.pkl' });
    assert.equal(r.format, 'detectron');
    assert.deepEqual([...(r.tensors.get('roi_heads.box_head.fc6.bias')!.data as Float32Array)], [0.5, -1]);
  });

  it('refuses big-endian arrays and reports arrays it cannot represent', () => {
    const arr = (code: string, order: string, bytes: number[], shape: number): PickleBuilder =>
      new PickleBuilder()
        .global('numpy.core.multiarray', '_reconstruct')
        .global('numpy', 'ndarray')
        .int(0)
        .tuple1()
        .binstring('b')
        .raw(0x87)
        .reduce()
        .mark()
        .int(1)
        .ints([shape])
        .global('numpy', 'dtype')
        .binstring(code)
        .bool(false)
        .bool(true)
        .raw(0x87)
        .reduce()
        .mark()
        .int(3)
        .binstring(order)
        .none()
        .none()
        .none()
        .int(0)
        .int(0)
        .int(0)
        .tuple()
        .build()
        .bool(false)
        .binbytes(bytes)
        .tuple()
        .build();
    const file = (code: string, order: string, bytes: number[], shape = bytes.length / Number(code.slice(1))): Uint8Array => {
      const p = new PickleBuilder().proto(2).emptyDict().unicode('fc6_w');
      const a = arr(code, order, bytes, shape).toBytes();
      return Uint8Array.from([...p.toBytes(), ...a, 0x73, 0x2e]);
    };
    assert.throws(
      () => readCheckpoint(file('f4', '>', [0, 0, 0x80, 0x3f])),
      (e: unknown) => e instanceof CheckpointError && e.reason === 'byte-order' && /"fc6_w": numpy array is big-endian/.test(e.message),
    );
    const r = readCheckpoint(file('i2', '<', [1, 0, 2, 0]), { from: 'detectron' });
    assert.deepEqual(r.report.ignored, [{ key: 'fc6_w', reason: 'numpy dtype <i2 (supported: f4, f2, f8, i8, i4, i1, u1, b1)' }]);
    assert.throws(
      () => readCheckpoint(file('f4', '<', [0, 0, 0x80], 1)),
      (e: unknown) => e instanceof CheckpointError && e.reason === 'storage-size' && /shape \[1\] and dtype f4 needs 4 bytes, its data has 3/.test(e.message),
    );
  });
});
