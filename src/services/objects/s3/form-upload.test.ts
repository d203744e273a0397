import { describe, expect, it } from 'vitest';
import { ObjectError } from '../errors.js';
import { checkPostPolicy, formBoundary, parsePostPolicy, readFormUpload } from './form-upload.js';

const b64 = (doc: unknown) => Buffer.from(JSON.stringify(doc)).toString('base64');
const FUTURE = '2099-01-01T00:00:00Z';

function form(boundary: string, parts: [string, string, string?][]): Buffer {
  const out: string[] = [];
  for (const [name, value, filename] of parts) {
    out.push(`--${boundary}\r\n`);
    out.push(
      `Content-Disposition: form-data; name="${name}"${filename !== undefined ? `; filename="${filename}"` : ''}\r\n\r\n`,
    );
    out.push(`${value}\r\n`);
  }
  out.push(`--${boundary}--\r\n`);
  return Buffer.from(out.join(''));
}

async function* pieces(buf: Buffer, size: number) {
  for (let i = 0; i < buf.length; i += size) yield buf.subarray(i, i + size);
}

async function text(s: AsyncIterable<Uint8Array>) {
  const all: Buffer[] = [];
  for await (const p of s) all.push(Buffer.from(p));
  return Buffer.concat(all).toString();
}

const failure = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return e instanceof ObjectError ? `${e.status} ${e.s3Code}` : String(e);
  }
  return 'ok';
};

describe('multipart/form-data reader', () => {
  it('reads the fields before the file and streams the file, whatever the chunking', async () => {
    const boundary = '----abc123';
    const file = `line1\r\n--${boundary.slice(0, 5)} not a boundary\r\n${'x'.repeat(5000)}`;
    const body = form(boundary, [
      ['key', 'foo/name'],
      ['Content-Type', 'text/plain'],
      ['file', file, 'a.txt'],
      ['after', 'ignored'],
    ]);
    for (const size of [1, 7, 64, 100000]) {
      const f = await readFormUpload(pieces(body, size), boundary);
      expect(f.fields.get('key')?.value).toBe('foo/name');
      expect(f.fields.get('content-type')?.name).toBe('Content-Type');
      expect(f.file.filename).toBe('a.txt');
      expect(await text(f.file.stream)).toBe(file);
      expect(f.fields.has('after')).toBe(false);
    }
  });

  it('takes the boundary from the content type and refuses bodies without a file', async () => {
    expect(formBoundary('multipart/form-data; boundary=xyz')).toBe('xyz');
    expect(formBoundary('multipart/form-data; boundary="q r"')).toBe('q r');
    expect(formBoundary('application/xml')).toBeUndefined();
    await expect(readFormUpload(pieces(form('b', [['key', 'k']]), 3), 'b')).rejects.toBeInstanceOf(
      ObjectError,
    );
  });

  it('fails the file stream when the body ends inside the file', async () => {
    const body = Buffer.from('--b\r\nContent-Disposition: form-data; name="file"\r\n\r\nhalf a fi');
    const f = await readFormUpload(pieces(body, 4), 'b');
    await expect(text(f.file.stream)).rejects.toMatchObject({ s3Code: 'IncompleteBody' });
  });
});

describe('POST policy', () => {
  const conditions = [
    { bucket: 'b1' },
    ['starts-with', '$key', 'foo'],
    { acl: 'private' },
    ['starts-with', '$Content-Type', 'text/'],
    ['content-length-range', 0, 1024],
  ];
  const values = () =>
    new Map([
      ['bucket', 'b1'],
      ['key', 'foo.txt'],
      ['acl', 'private'],
      ['content-type', 'text/plain'],
      ['policy', 'p'],
      ['awsaccesskeyid', 'AK'],
      ['signature', 's'],
      ['x-ignore-me', '1'],
    ]);

  it('accepts a form every condition holds for, and answers the size range', () => {
    const p = parsePostPolicy(b64({ expiration: FUTURE, conditions }));
    expect(checkPostPolicy(p, values(), Date.now())).toEqual({ min: 0, max: 1024 });
    // Operators and field names are case-insensitive.
    const q = parsePostPolicy(
      b64({
        expiration: FUTURE,
        conditions: [
          { bUcKeT: 'b1' },
          ['StArTs-WiTh', '$KeY', 'foo'],
          { AcL: 'private' },
          ['eq', '$content-type', 'text/plain'],
        ],
      }),
    );
    expect(checkPostPolicy(q, values(), Date.now())).toBeUndefined();
  });

  it('denies (403) expired policies, failed conditions and fields the policy does not name', () => {
    const now = Date.now();
    const p = (c: unknown[], expiration = FUTURE) => parsePostPolicy(b64({ expiration, conditions: c }));
    expect(failure(() => checkPostPolicy(p(conditions, '2000-01-01T00:00:00Z'), values(), now))).toBe(
      '403 AccessDenied',
    );
    const wrongBucket = values();
    wrongBucket.set('bucket', 'other');
    expect(failure(() => checkPostPolicy(p(conditions), wrongBucket, now))).toBe('403 AccessDenied');
    expect(failure(() => checkPostPolicy(p(conditions.slice(1)), values(), now))).toBe('403 AccessDenied');
    const extra = values();
    extra.set('x-amz-meta-foo', 'bar');
    expect(failure(() => checkPostPolicy(p(conditions), extra, now))).toBe('403 AccessDenied');
    expect(
      failure(() => checkPostPolicy(p([...conditions, ['eq', '$x-amz-meta-foo', '']]), extra, now)),
    ).toBe('403 AccessDenied');
  });

  it('refuses (400) malformed policy documents', () => {
    const bad = (doc: unknown) => failure(() => parsePostPolicy(b64(doc)));
    expect(bad({ conditions })).toBe('400 InvalidPolicyDocument');
    expect(bad({ expiration: FUTURE })).toBe('400 InvalidPolicyDocument');
    expect(bad({ expiration: '2099-01-01 00:00:00+00:00', conditions })).toBe('400 InvalidPolicyDocument');
    expect(bad({ EXPIRATION: FUTURE, conditions })).toBe('400 InvalidPolicyDocument');
    expect(bad({ expiration: FUTURE, CONDITIONS: conditions })).toBe('400 InvalidPolicyDocument');
    expect(bad({ expiration: FUTURE, conditions: [{}] })).toBe('400 InvalidPolicyDocument');
    expect(bad({ expiration: FUTURE, conditions: [['content-length-range', 0]] })).toBe(
      '400 InvalidPolicyDocument',
    );
    expect(bad({ expiration: FUTURE, conditions: [['content-length-range', -1, 0]] })).toBe(
      '400 InvalidPolicyDocument',
    );
    expect(failure(() => parsePostPolicy('not base64 json'))).toBe('400 InvalidPolicyDocument');
  });
});
