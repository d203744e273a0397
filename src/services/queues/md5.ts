import { createHash, hash } from 'node:crypto';

/** A message attribute as SQS stores it: binary values are raw bytes. */
export interface MessageAttribute {
  DataType: string;
  StringValue?: string;
  BinaryValue?: Buffer;
}

/** MD5 of the message body's UTF-8 bytes, hex (one-shot: no Hash object per message). */
export const md5OfBody = (body: string) => hash('md5', body, 'hex');

function lengthPrefixed(bytes: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

/**
 * MD5 of message attributes (or message system attributes) as SQS computes it and the SDKs verify it:
 * attributes sorted by name, each encoded as name, data type (both 4-byte big-endian length + UTF-8),
 * a transport byte (1 string, 2 binary) and the value (length + bytes). Undefined for none.
 */
export function md5OfAttributes(attrs: Record<string, MessageAttribute> | undefined): string | undefined {
  if (attrs === undefined) return undefined;
  const names = Object.keys(attrs ?? {}).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  if (!attrs || names.length === 0) return undefined;
  const hash = createHash('md5');
  for (const name of names) {
    const a = attrs[name]!;
    hash.update(lengthPrefixed(Buffer.from(name, 'utf8')));
    hash.update(lengthPrefixed(Buffer.from(a.DataType, 'utf8')));
    if (a.BinaryValue !== undefined) {
      hash.update(Buffer.from([2]));
      hash.update(lengthPrefixed(a.BinaryValue));
    } else {
      hash.update(Buffer.from([1]));
      hash.update(lengthPrefixed(Buffer.from(a.StringValue ?? '', 'utf8')));
    }
  }
  return hash.digest('hex');
}
