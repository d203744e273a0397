import { ObjectError } from './errors.js';

/**
 * Bucket naming rules for general-purpose buckets
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html): 3-63 characters of
 * lowercase letters, digits, dots and hyphens; starts and ends with a letter or digit; no two
 * adjacent dots; not an IP address; none of the reserved prefixes and suffixes.
 */
export function bucketNameProblem(name: string): string | null {
  if (name.length < 3 || name.length > 63) return 'must be 3 to 63 characters long';
  if (!/^[a-z0-9][a-z0-9.-]*[a-z0-9]$/.test(name))
    return 'may contain only lowercase letters, digits, dots and hyphens, and must begin and end with a letter or digit';
  if (name.includes('..')) return 'must not contain two adjacent periods';
  if (name.includes('.-') || name.includes('-.')) return 'must not have a period next to a hyphen';
  if (/^\d{1,3}(\.\d{1,3}){3}$/.test(name)) return 'must not be formatted as an IP address';
  if (/^(xn--|sthree-|amzn-s3-demo-)/.test(name)) return 'must not start with a reserved prefix';
  if (/(-s3alias|--ol-s3|\.mrap|--x-s3|--table-s3)$/.test(name)) return 'must not end with a reserved suffix';
  return null;
}

export function assertBucketName(name: string): void {
  const problem = bucketNameProblem(name);
  if (problem)
    throw new ObjectError('InvalidBucketName', `The specified bucket is not valid: the name ${problem}.`, {
      extra: { BucketName: name },
    });
}

export const MAX_KEY_BYTES = 1024;
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;

/**
 * Object keys are any UTF-8 string of 1 to 1024 bytes (AWS). We also refuse NUL and other C0
 * controls but tab, LF and CR (XML cannot carry them in listings), and lone surrogates (they have no
 * UTF-8 form). Keys like `a/../b` are legal S3 keys and are stored verbatim; they are never paths.
 */
export function assertObjectKey(key: string): void {
  if (key.length === 0) throw new ObjectError('InvalidArgument', 'An object key must not be empty.');
  if (Buffer.byteLength(key, 'utf8') > MAX_KEY_BYTES)
    throw new ObjectError('KeyTooLongError', 'Your key is too long', {
      extra: { MaxSizeAllowed: String(MAX_KEY_BYTES), Size: String(Buffer.byteLength(key, 'utf8')) },
    });
  // biome-ignore lint/suspicious/noControlCharactersInRegex: these are the characters refused
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\uFFFE\uFFFF]/.test(key) || LONE_SURROGATE.test(key))
    throw new ObjectError(
      'InvalidArgument',
      'The object key contains characters S3 cannot list (control characters or invalid UTF-16).',
      {
        extra: { ArgumentName: 'key' },
      },
    );
}
