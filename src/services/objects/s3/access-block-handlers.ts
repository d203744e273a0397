/** PublicAccessBlock and bucket logging configuration (stored documents). */
import { childNamed, childText } from '../../../platform/xml/parser.js';
import { el, elAttrs, xmlDocument } from '../../../platform/xml/writer.js';
import type { PublicAccessBlock } from '../access.js';
import { ObjectError } from '../errors.js';
import { malformedXml, readXml, S3_XMLNS, type S3Call, sendEmpty, sendXml } from './request.js';
import { renderElement } from './xml-echo.js';

const FLAGS: [keyof PublicAccessBlock, string][] = [
  ['blockPublicAcls', 'BlockPublicAcls'],
  ['ignorePublicAcls', 'IgnorePublicAcls'],
  ['blockPublicPolicy', 'BlockPublicPolicy'],
  ['restrictPublicBuckets', 'RestrictPublicBuckets'],
];

export async function getPublicAccessBlock(call: S3Call) {
  const { value } = await call.objects.getBucketConfig(call.ctx, call.bucket!, 'public_access_block');
  if (value === null)
    throw new ObjectError(
      'NoSuchPublicAccessBlockConfiguration',
      'The public access block configuration was not found',
      { extra: { BucketName: call.bucket! } },
    );
  const block = JSON.parse(value) as PublicAccessBlock;
  return sendXml(
    call,
    xmlDocument(
      elAttrs(
        'PublicAccessBlockConfiguration',
        { xmlns: S3_XMLNS },
        ...FLAGS.map(([k, name]) => el(name, block[k])),
      ),
    ),
  );
}

export async function putPublicAccessBlock(call: S3Call) {
  const root = (await readXml(call, 'PublicAccessBlockConfiguration'))!;
  const block = {} as PublicAccessBlock;
  for (const [k, name] of FLAGS) {
    const v = childText(root, name)?.trim().toLowerCase();
    if (v !== undefined && v !== 'true' && v !== 'false') throw malformedXml();
    block[k] = v === 'true';
  }
  await call.objects.putBucketConfig(call.ctx, call.bucket!, 'public_access_block', JSON.stringify(block));
  return sendEmpty(call, 200);
}

export async function deletePublicAccessBlock(call: S3Call) {
  await call.objects.putBucketConfig(call.ctx, call.bucket!, 'public_access_block', null);
  return sendEmpty(call, 204);
}

/** Logging is stored and answered as configured; Yunhai does not deliver access logs (yet). */
export async function getBucketLogging(call: S3Call) {
  const { value } = await call.objects.getBucketConfig(call.ctx, call.bucket!, 'logging');
  return sendXml(call, value ?? xmlDocument(elAttrs('BucketLoggingStatus', { xmlns: S3_XMLNS })));
}

export async function putBucketLogging(call: S3Call) {
  const root = (await readXml(call, 'BucketLoggingStatus'))!;
  const enabled = childNamed(root, 'LoggingEnabled');
  if (enabled) {
    const target = childText(enabled, 'TargetBucket')?.trim();
    if (!target) throw malformedXml();
    if (childText(enabled, 'TargetPrefix') === undefined) throw malformedXml();
    // The target bucket must exist (AWS: InvalidTargetBucketForLogging).
    await call.objects.headBucket(call.ctx, target).catch((e) => {
      if (e instanceof ObjectError && e.s3Code === 'NoSuchBucket')
        throw new ObjectError(
          'InvalidTargetBucketForLogging',
          'The target bucket for logging does not exist',
          {
            extra: { TargetBucket: target },
          },
        );
      throw e;
    });
  }
  await call.objects.putBucketConfig(
    call.ctx,
    call.bucket!,
    'logging',
    enabled ? renderElement(root, S3_XMLNS) : null,
  );
  return sendEmpty(call, 200);
}
