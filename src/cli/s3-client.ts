/**
 * A small S3 client for the CLI (and bench/s3.js): node:http with a keep-alive agent, requests signed
 * with our own SigV4 signer (service `s3`), responses parsed with the platform's XML parser. It
 * covers what `yunhai bucket` needs (buckets, listings, single and multipart uploads, downloads,
 * deletes) and stays far lighter than the AWS SDK, which the CLI would otherwise load on every run.
 */
import { createReadStream, createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { signRequest, UNSIGNED_PAYLOAD, uriEncode } from '../platform/auth/sigv4.js';
import { childNamed, childrenNamed, childText, parseXml, type XmlElement } from '../platform/xml/parser.js';
import { CliError } from './errors.js';

export interface S3Keys {
  accessKeyId: string;
  secretAccessKey: string;
}

export interface S3Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  body: Buffer;
}

export interface ListedObject {
  key: string;
  size: number;
  etag: string;
  lastModified: string;
}

export interface Listing {
  objects: ListedObject[];
  prefixes: string[];
  nextToken: string | null;
}

/** An S3 error answer, as one line (`NoSuchBucket: The specified bucket does not exist`). */
export class S3Error extends CliError {
  readonly s3Code: string;
  constructor(code: string, message: string, status: number) {
    super(`${code}: ${message}`, 1, { code, status });
    this.s3Code = code;
  }
}

const REGION = 'us-east-1';
const XMLNS = 'http://s3.amazonaws.com/doc/2006-03-01/';
const xmlEscape = (s: string) =>
  s.replace(
    /[<>&"']/g,
    (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[c]!,
  );

/** `bucket/key` → the path-style request path (`/bucket/key`, each key byte encoded as S3 expects). */
export function objectPath(bucket: string, key?: string): string {
  const b = `/${uriEncode(bucket)}`;
  if (key === undefined) return b;
  return `${b}/${key.split('/').map(uriEncode).join('/')}`;
}

export class S3Client {
  readonly endpoint: URL;
  private readonly keys: S3Keys;
  private readonly agent: http.Agent;
  private readonly mod: typeof http | typeof https;
  private readonly timeoutMs: number;

  constructor(opts: { endpoint: string; keys: S3Keys; maxSockets?: number; timeoutMs?: number }) {
    this.endpoint = new URL(opts.endpoint);
    this.keys = opts.keys;
    this.mod = this.endpoint.protocol === 'https:' ? https : http;
    this.agent = new this.mod.Agent({ keepAlive: true, maxSockets: opts.maxSockets ?? 16 });
    this.timeoutMs = opts.timeoutMs ?? 120_000;
  }

  close(): void {
    this.agent.destroy();
  }

  /**
   * One signed request. A Buffer/string body is hashed into the signature; a stream goes
   * UNSIGNED-PAYLOAD with its length (the caller must know it). With `sink`, a 2xx body streams
   * there instead of being buffered (onData sees each chunk's length).
   */
  async request(
    method: string,
    path: string,
    opts: {
      query?: Record<string, string>;
      headers?: Record<string, string>;
      body?: Buffer | string | Readable;
      length?: number;
      sink?: NodeJS.WritableStream;
      /** Called with a 2xx answer's headers before its body streams into `sink`. */
      onHeaders?: (headers: http.IncomingHttpHeaders) => void;
    } = {},
  ): Promise<S3Response> {
    const url = new URL(this.endpoint.href);
    url.pathname = `${url.pathname.replace(/\/+$/, '')}${path}`;
    const q = Object.entries(opts.query ?? {});
    url.search = q.map(([k, v]) => (v === '' ? uriEncode(k) : `${uriEncode(k)}=${uriEncode(v)}`)).join('&');
    const headers: Record<string, string> = { ...opts.headers };
    const streaming = opts.body !== undefined && typeof opts.body !== 'string' && !Buffer.isBuffer(opts.body);
    if (streaming) {
      headers['x-amz-content-sha256'] = UNSIGNED_PAYLOAD;
      headers['content-length'] = String(opts.length ?? 0);
    } else if (opts.body !== undefined) {
      headers['content-length'] = String(Buffer.byteLength(opts.body as Buffer | string));
    } else if (method === 'PUT' || method === 'POST') {
      headers['content-length'] = '0';
    }
    Object.assign(
      headers,
      signRequest({
        method,
        url,
        headers,
        body: streaming ? undefined : (opts.body as Buffer | string | undefined),
        accessKeyId: this.keys.accessKeyId,
        secretAccessKey: this.keys.secretAccessKey,
        region: REGION,
        service: 's3',
      }),
    );
    return new Promise<S3Response>((resolve, reject) => {
      const req = this.mod.request(
        url,
        { method, headers, agent: this.agent, timeout: this.timeoutMs },
        (res) => {
          const status = res.statusCode ?? 0;
          if (opts.sink && status >= 200 && status < 300) {
            opts.onHeaders?.(res.headers);
            pipeline(res, opts.sink).then(
              () => resolve({ status, headers: res.headers, body: Buffer.alloc(0) }),
              reject,
            );
            return;
          }
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks);
            if (status >= 300) reject(this.errorOf(status, body, method));
            else resolve({ status, headers: res.headers, body });
          });
          res.on('error', reject);
        },
      );
      req.on('timeout', () => req.destroy(new CliError(`no answer from ${this.endpoint.origin} in time`, 3)));
      req.on('error', (e) => reject(this.networkError(e)));
      if (streaming) {
        (opts.body as Readable).on('error', (e) => req.destroy(e));
        (opts.body as Readable).pipe(req);
      } else req.end(opts.body as Buffer | string | undefined);
    });
  }

  private errorOf(status: number, body: Buffer, method: string): CliError {
    if (body.length > 0) {
      try {
        const root = parseXml(body.toString('utf8'));
        const code = childText(root, 'Code');
        if (root.name === 'Error' && code)
          return new S3Error(code, (childText(root, 'Message') ?? '').replace(/\s+/g, ' ').trim(), status);
      } catch {
        // not XML: fall through
      }
    }
    // HEAD answers carry no body; name the usual cases.
    const code = status === 404 ? 'NotFound' : status === 403 ? 'AccessDenied' : `HTTP${status}`;
    return new S3Error(code, `${method} answered ${status}`, status);
  }

  private networkError(e: unknown): unknown {
    if (e instanceof CliError) return e;
    const code = (e as { code?: string }).code;
    if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EAI_AGAIN' || code === 'ECONNRESET')
      return new CliError(`cannot connect to the S3 endpoint ${this.endpoint.origin}: ${code}`, 3);
    return e;
  }

  // ---- operations ------------------------------------------------------------------------

  async listBuckets(): Promise<{ name: string; created: string }[]> {
    const r = await this.request('GET', '/');
    const buckets = childNamed(parseXml(r.body.toString('utf8')), 'Buckets');
    return (buckets ? childrenNamed(buckets, 'Bucket') : []).map((b) => ({
      name: childText(b, 'Name') ?? '',
      created: childText(b, 'CreationDate') ?? '',
    }));
  }

  async createBucket(name: string, region?: string): Promise<void> {
    const body =
      region && region !== REGION
        ? `<CreateBucketConfiguration xmlns="${XMLNS}"><LocationConstraint>${xmlEscape(region)}</LocationConstraint></CreateBucketConfiguration>`
        : undefined;
    await this.request('PUT', objectPath(name), { body });
  }

  async deleteBucket(name: string): Promise<void> {
    await this.request('DELETE', objectPath(name));
  }

  async listObjects(
    bucket: string,
    opts: { prefix?: string; delimiter?: string; token?: string; maxKeys?: number } = {},
  ): Promise<Listing> {
    const query: Record<string, string> = { 'list-type': '2' };
    if (opts.prefix) query.prefix = opts.prefix;
    if (opts.delimiter) query.delimiter = opts.delimiter;
    if (opts.token) query['continuation-token'] = opts.token;
    if (opts.maxKeys) query['max-keys'] = String(opts.maxKeys);
    const r = await this.request('GET', objectPath(bucket), { query });
    const root = parseXml(r.body.toString('utf8'));
    const truncated = childText(root, 'IsTruncated') === 'true';
    return {
      objects: childrenNamed(root, 'Contents').map((c: XmlElement) => ({
        key: childText(c, 'Key') ?? '',
        size: Number(childText(c, 'Size') ?? 0),
        etag: (childText(c, 'ETag') ?? '').replace(/"/g, ''),
        lastModified: childText(c, 'LastModified') ?? '',
      })),
      prefixes: childrenNamed(root, 'CommonPrefixes').map((p) => childText(p, 'Prefix') ?? ''),
      nextToken: truncated ? (childText(root, 'NextContinuationToken') ?? null) : null,
    };
  }

  /** Every page of a listing. */
  async *listAll(
    bucket: string,
    opts: { prefix?: string; delimiter?: string } = {},
  ): AsyncGenerator<Listing> {
    let token: string | undefined;
    for (;;) {
      const page = await this.listObjects(bucket, { ...opts, token });
      yield page;
      if (!page.nextToken) return;
      token = page.nextToken;
    }
  }

  async headObject(bucket: string, key: string): Promise<{ size: number; etag: string }> {
    const r = await this.request('HEAD', objectPath(bucket, key));
    return {
      size: Number(r.headers['content-length'] ?? 0),
      etag: String(r.headers.etag ?? '').replace(/"/g, ''),
    };
  }

  async putObject(
    bucket: string,
    key: string,
    body: Buffer | Readable,
    opts: { length?: number; contentType?: string } = {},
  ): Promise<string> {
    const headers: Record<string, string> = {};
    if (opts.contentType) headers['content-type'] = opts.contentType;
    const r = await this.request('PUT', objectPath(bucket, key), { body, length: opts.length, headers });
    return String(r.headers.etag ?? '').replace(/"/g, '');
  }

  /** Streams an object (or a byte range) into `sink`. */
  async getObject(
    bucket: string,
    key: string,
    sink: NodeJS.WritableStream,
    opts: { range?: string; onSize?: (size: number) => void } = {},
  ) {
    return this.request('GET', objectPath(bucket, key), {
      sink,
      headers: opts.range ? { range: opts.range } : {},
      onHeaders: (h) => opts.onSize?.(Number(h['content-length'] ?? 0)),
    });
  }

  async deleteObject(bucket: string, key: string): Promise<void> {
    await this.request('DELETE', objectPath(bucket, key));
  }

  /** DeleteObjects for up to 1000 keys; answers the keys that failed, with their error. */
  async deleteObjects(bucket: string, keys: string[]): Promise<{ key: string; code: string }[]> {
    const body = `<Delete xmlns="${XMLNS}"><Quiet>true</Quiet>${keys
      .map((k) => `<Object><Key>${xmlEscape(k)}</Key></Object>`)
      .join('')}</Delete>`;
    const md5 = (await import('node:crypto')).createHash('md5').update(body).digest('base64');
    const r = await this.request('POST', objectPath(bucket), {
      query: { delete: '' },
      body,
      headers: { 'content-md5': md5, 'content-type': 'application/xml' },
    });
    return childrenNamed(parseXml(r.body.toString('utf8')), 'Error').map((e) => ({
      key: childText(e, 'Key') ?? '',
      code: childText(e, 'Code') ?? '',
    }));
  }

  /**
   * Uploads a file in parts of `partSize` bytes, `concurrency` at a time; aborts the upload when a
   * part fails. `onBytes` is called with each part's size as it completes.
   */
  async uploadFileMultipart(
    bucket: string,
    key: string,
    file: string,
    size: number,
    opts: { partSize: number; concurrency?: number; onBytes?: (n: number) => void; contentType?: string },
  ): Promise<string> {
    const path = objectPath(bucket, key);
    const init = await this.request('POST', path, {
      query: { uploads: '' },
      headers: opts.contentType ? { 'content-type': opts.contentType } : {},
    });
    const uploadId = childText(parseXml(init.body.toString('utf8')), 'UploadId');
    if (!uploadId) throw new CliError('CreateMultipartUpload answered no UploadId', 1);
    const count = Math.max(1, Math.ceil(size / opts.partSize));
    const etags: string[] = new Array(count);
    let next = 0;
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= count) return;
        const start = i * opts.partSize;
        const end = Math.min(size, start + opts.partSize);
        const fh = await open(file, 'r');
        let buf: Buffer;
        try {
          buf = Buffer.allocUnsafe(end - start);
          const { bytesRead } = await fh.read(buf, 0, buf.length, start);
          if (bytesRead !== buf.length) throw new CliError(`${file} changed while it was being uploaded`, 1);
        } finally {
          await fh.close();
        }
        const r = await this.request('PUT', path, {
          query: { partNumber: String(i + 1), uploadId },
          body: buf,
        });
        etags[i] = String(r.headers.etag ?? '');
        opts.onBytes?.(buf.length);
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(opts.concurrency ?? 4, count) }, worker));
      const body = `<CompleteMultipartUpload xmlns="${XMLNS}">${etags
        .map((e, i) => `<Part><PartNumber>${i + 1}</PartNumber><ETag>${xmlEscape(e)}</ETag></Part>`)
        .join('')}</CompleteMultipartUpload>`;
      const done = await this.request('POST', path, { query: { uploadId }, body });
      // CompleteMultipartUpload can answer 200 with an error document.
      const root = parseXml(done.body.toString('utf8'));
      if (root.name === 'Error')
        throw new S3Error(childText(root, 'Code') ?? 'InternalError', childText(root, 'Message') ?? '', 200);
      return (childText(root, 'ETag') ?? '').replace(/"/g, '');
    } catch (e) {
      await this.request('DELETE', path, { query: { uploadId } }).catch(() => {});
      throw e;
    }
  }

  /** A file as a stream body (for single-request uploads). */
  static fileStream(file: string): Readable {
    return createReadStream(file, { highWaterMark: 256 * 1024 });
  }

  static fileSink(file: string): NodeJS.WritableStream {
    return createWriteStream(file);
  }
}
