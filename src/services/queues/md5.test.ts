import { describe, expect, it } from 'vitest';
import { md5OfAttributes, md5OfBody } from './md5.js';

describe('SQS message digests', () => {
  it('hashes the body as UTF-8 (AWS SendMessage example)', () => {
    expect(md5OfBody('This is a test message')).toBe('fafb00f5732ab283681e124bf8747ed1');
    expect(md5OfBody('')).toBe('d41d8cd98f00b204e9800998ecf8427e');
  });

  it('matches the published digests of string, custom number and binary attributes', () => {
    const str = { DataType: 'String', StringValue: 'attribValue 1' };
    const num = { DataType: 'Number.float', StringValue: '4563442423554324324264524243.32543234' };
    const bin = { DataType: 'Binary', BinaryValue: Buffer.from('Hello binary world!') };
    expect(md5OfAttributes({ attribName1: str })).toBe('19e27d4e946b072f3f58da80d94fd778');
    expect(md5OfAttributes({ customNumberTypeAttrib: num })).toBe('9fe1b90bbd9965bdf77bac517c7d2495');
    expect(md5OfAttributes({ binaryAttribute: bin })).toBe('31a92b15d92f8db860eda32aceb656c3');
    expect(md5OfAttributes({ binaryAttribute: bin, attribName1: str, customNumberTypeAttrib: num })).toBe(
      'c932db14a896c663f83c260297d594ff',
    );
  });

  it('has no digest for no attributes', () => {
    expect(md5OfAttributes({})).toBeUndefined();
    expect(md5OfAttributes(undefined)).toBeUndefined();
  });
});
