import { describe, expect, it } from 'vitest';
import { parseXml } from '../../platform/xml/parser.js';
import { S3DocumentError } from './bucket-policy.js';
import {
  abortDateFor,
  abortRuleFor,
  expirationHeader,
  type LifecycleConfiguration,
  type LifecycleVersion,
  lifecycleActionFor,
  lifecycleConfigurationXml,
  lifecycleDueDate,
  parseLifecycleConfiguration,
} from './lifecycle-rules.js';

const doc = (rules: string) =>
  `<LifecycleConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/">${rules}</LifecycleConfiguration>`;
const rule = (inner: string) => `<Rule>${inner}</Rule>`;
const parse = (rules: string) => parseLifecycleConfiguration(doc(rules), { newId: () => 'generated' });

const codeOf = (rules: string): string => {
  try {
    parse(rules);
  } catch (e) {
    expect(e).toBeInstanceOf(S3DocumentError);
    return (e as S3DocumentError).code;
  }
  throw new Error('expected an S3DocumentError');
};

const day = 86_400_000;
const at = (iso: string) => new Date(iso);

describe('parseLifecycleConfiguration', () => {
  it('reads every kind of rule and writes each back in the form it came in', () => {
    const config = parse(
      rule(
        '<ID>legacy</ID><Prefix>test1/</Prefix><Status>Enabled</Status><Expiration><Days>31</Days></Expiration>',
      ) +
        rule(
          '<Filter><Prefix>logs/</Prefix></Filter><Status>Disabled</Status>' +
            '<Expiration><Date>2017-09-27</Date></Expiration>' +
            '<Transition><Days>30</Days><StorageClass>STANDARD_IA</StorageClass></Transition>' +
            '<Transition><Date>2018-01-01T00:00:00.000Z</Date><StorageClass>GLACIER</StorageClass></Transition>',
        ) +
        rule(
          '<ID>and</ID><Filter><And><Prefix>p/</Prefix><Tag><Key>k1</Key><Value>v1</Value></Tag><Tag><Key>k2</Key><Value></Value></Tag>' +
            '<ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>1000</ObjectSizeLessThan></And></Filter>' +
            '<Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>3</NewerNoncurrentVersions></NoncurrentVersionExpiration>' +
            '<NoncurrentVersionTransition><NoncurrentDays>0</NoncurrentDays><StorageClass>GLACIER</StorageClass></NoncurrentVersionTransition>',
        ) +
        rule(
          '<ID>empty</ID><Filter/><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>' +
            '<AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>',
        ) +
        rule(
          '<ID>tag</ID><Filter><Tag><Key>key1</Key><Value>tag1</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>',
        ),
    );
    expect(config).toEqual<LifecycleConfiguration>({
      rules: [
        {
          id: 'legacy',
          status: 'Enabled',
          filter: { form: 'legacy-prefix', prefix: 'test1/', tags: [] },
          expiration: { days: 31 },
          transitions: [],
          noncurrentVersionTransitions: [],
        },
        {
          id: 'generated',
          status: 'Disabled',
          filter: { form: 'filter', prefix: 'logs/', tags: [] },
          expiration: { date: '2017-09-27T00:00:00.000Z' },
          transitions: [
            { days: 30, storageClass: 'STANDARD_IA' },
            { date: '2018-01-01T00:00:00.000Z', storageClass: 'GLACIER' },
          ],
          noncurrentVersionTransitions: [],
        },
        {
          id: 'and',
          status: 'Enabled',
          filter: {
            form: 'and',
            prefix: 'p/',
            tags: [
              { key: 'k1', value: 'v1' },
              { key: 'k2', value: '' },
            ],
            objectSizeGreaterThan: 10,
            objectSizeLessThan: 1000,
          },
          noncurrentVersionExpiration: { noncurrentDays: 2, newerNoncurrentVersions: 3 },
          transitions: [],
          noncurrentVersionTransitions: [{ noncurrentDays: 0, storageClass: 'GLACIER' }],
        },
        {
          id: 'empty',
          status: 'Enabled',
          filter: { form: 'filter', tags: [] },
          expiration: { expiredObjectDeleteMarker: true },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 2 },
          transitions: [],
          noncurrentVersionTransitions: [],
        },
        {
          id: 'tag',
          status: 'Enabled',
          filter: { form: 'filter', tags: [{ key: 'key1', value: 'tag1' }] },
          expiration: { days: 1 },
          transitions: [],
          noncurrentVersionTransitions: [],
        },
      ],
    });
    const xml = lifecycleConfigurationXml(config);
    expect(xml).toContain('<Rule><ID>legacy</ID><Prefix>test1/</Prefix><Status>Enabled</Status>');
    expect(xml).toContain('<Date>2017-09-27T00:00:00Z</Date>');
    expect(parseLifecycleConfiguration(xml)).toEqual(config);
    expect(parseLifecycleConfiguration(parseXml(xml))).toEqual(config);
  });

  it('gives rules without an ID a random one', () => {
    const c = parseLifecycleConfiguration(
      doc(
        rule('<Prefix>a/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>').repeat(2),
      ),
    );
    const [a, b] = c.rules.map((r) => r.id);
    expect(a).toMatch(/^[A-Z0-9]{48}$/);
    expect(a).not.toBe(b);
  });

  const exp = (inner: string) =>
    `<Prefix>x/</Prefix><Status>Enabled</Status><Expiration>${inner}</Expiration>`;
  it.each([
    ['broken XML', '<Rule>', 'MalformedXML'],
    ['no rules', '', 'MalformedXML'],
    [
      'a lower-case status',
      rule('<Prefix/><Status>enabled</Status><Expiration><Days>1</Days></Expiration>'),
      'MalformedXML',
    ],
    [
      'an unknown status',
      rule('<Prefix/><Status>invalid</Status><Expiration><Days>1</Days></Expiration>'),
      'MalformedXML',
    ],
    [
      'no Filter and no Prefix',
      rule('<Status>Enabled</Status><Expiration><Days>1</Days></Expiration>'),
      'MalformedXML',
    ],
    [
      'Filter and Prefix both',
      rule('<Prefix/><Filter/><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>'),
      'MalformedXML',
    ],
    [
      'two predicates without And',
      rule(
        '<Filter><Prefix>a</Prefix><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>',
      ),
      'MalformedXML',
    ],
    ['an unknown element', rule(`${exp('<Days>1</Days>')}<Color/>`), 'MalformedXML'],
    ['an empty Expiration', rule(exp('')), 'MalformedXML'],
    ['Days and Date together', rule(exp('<Days>1</Days><Date>2020-01-01</Date>')), 'MalformedXML'],
    [
      'Days and ExpiredObjectDeleteMarker together',
      rule(exp('<Days>1</Days><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker>')),
      'MalformedXML',
    ],
    ['non-numeric Days', rule(exp('<Days>one</Days>')), 'MalformedXML'],
    ['an unparseable Date', rule(exp('<Date>soon</Date>')), 'MalformedXML'],
    ['Days 0 in an Expiration', rule(exp('<Days>0</Days>')), 'InvalidArgument'],
    ['negative Days', rule(exp('<Days>-1</Days>')), 'InvalidArgument'],
    ['a Date not at midnight', rule(exp('<Date>2020-01-01T10:00:00Z</Date>')), 'InvalidArgument'],
    [
      'an epoch-looking Date as botocore sends 20200101',
      rule(exp('<Date>1970-08-23T03:28:21Z</Date>')),
      'InvalidArgument',
    ],
    ['a 256-character ID', rule(`<ID>${'a'.repeat(256)}</ID>${exp('<Days>1</Days>')}`), 'InvalidArgument'],
    ['duplicate IDs', rule(`<ID>r</ID>${exp('<Days>1</Days>')}`).repeat(2), 'InvalidArgument'],
    ['a rule without actions', rule('<Prefix>a</Prefix><Status>Enabled</Status>'), 'InvalidRequest'],
    [
      'NoncurrentDays 0',
      rule(
        '<Prefix/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>0</NoncurrentDays></NoncurrentVersionExpiration>',
      ),
      'InvalidArgument',
    ],
    [
      'NewerNoncurrentVersions 101',
      rule(
        '<Prefix/><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>1</NoncurrentDays><NewerNoncurrentVersions>101</NewerNoncurrentVersions></NoncurrentVersionExpiration>',
      ),
      'InvalidArgument',
    ],
    [
      'DaysAfterInitiation 0',
      rule(
        '<Prefix/><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>0</DaysAfterInitiation></AbortIncompleteMultipartUpload>',
      ),
      'InvalidArgument',
    ],
    [
      'abort with a tag filter',
      rule(
        '<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>1</DaysAfterInitiation></AbortIncompleteMultipartUpload>',
      ),
      'InvalidRequest',
    ],
    [
      'ExpiredObjectDeleteMarker with a tag filter',
      rule(
        '<Filter><Tag><Key>k</Key><Value>v</Value></Tag></Filter><Status>Enabled</Status><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>',
      ),
      'InvalidRequest',
    ],
    [
      'duplicate tag keys in And',
      rule(
        '<Filter><And><Tag><Key>k</Key><Value>1</Value></Tag><Tag><Key>k</Key><Value>2</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>',
      ),
      'InvalidRequest',
    ],
    [
      'size bounds the wrong way round',
      rule(
        '<Filter><And><ObjectSizeGreaterThan>10</ObjectSizeGreaterThan><ObjectSizeLessThan>5</ObjectSizeLessThan></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>',
      ),
      'InvalidArgument',
    ],
    [
      'a transition to an unknown class',
      rule(
        '<Prefix/><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>LUKEWARM</StorageClass></Transition>',
      ),
      'MalformedXML',
    ],
    [
      'a transition to STANDARD_IA before 30 days',
      rule(
        '<Prefix/><Status>Enabled</Status><Transition><Days>1</Days><StorageClass>STANDARD_IA</StorageClass></Transition>',
      ),
      'InvalidArgument',
    ],
    [
      'a transition date not at midnight',
      rule(
        '<Prefix/><Status>Enabled</Status><Transition><Date>1970-08-23T03:28:21Z</Date><StorageClass>GLACIER</StorageClass></Transition>',
      ),
      'InvalidArgument',
    ],
  ])('refuses %s', (_what, rules, code) => {
    expect(codeOf(rules)).toBe(code);
  });

  it('accepts transition Days 0 and extra storage classes when told', () => {
    const r = rule(
      '<Prefix/><Status>Enabled</Status><Transition><Days>0</Days><StorageClass>LUKEWARM</StorageClass></Transition>',
    );
    expect(
      parseLifecycleConfiguration(doc(r), { storageClasses: ['LUKEWARM'] }).rules[0]!.transitions,
    ).toEqual([{ days: 0, storageClass: 'LUKEWARM' }]);
  });
});

describe('lifecycle decisions', () => {
  it('rounds due dates up to the next midnight UTC', () => {
    expect(lifecycleDueDate(at('2014-01-15T10:30:00Z'), 3).toISOString()).toBe('2014-01-19T00:00:00.000Z');
    expect(lifecycleDueDate(at('2014-01-15T00:00:00Z'), 3).toISOString()).toBe('2014-01-18T00:00:00.000Z');
  });

  const config = parse(
    rule(
      '<ID>days1</ID><Prefix>days1/</Prefix><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>',
    ) +
      rule(
        '<ID>tagged</ID><Filter><And><Prefix>t/</Prefix><Tag><Key>key1</Key><Value>tag1</Value></Tag><Tag><Key>key5</Key><Value>tag6</Value></Tag></And></Filter><Status>Enabled</Status><Expiration><Days>1</Days></Expiration>',
      ) +
      rule(
        '<ID>big</ID><Filter><ObjectSizeGreaterThan>1000</ObjectSizeGreaterThan></Filter><Status>Enabled</Status><Expiration><Days>10</Days></Expiration>',
      ) +
      rule(
        '<ID>dated</ID><Filter><Prefix>old/</Prefix></Filter><Status>Enabled</Status><Expiration><Date>2020-01-01</Date></Expiration>',
      ) +
      rule(
        '<ID>off</ID><Prefix>days1/</Prefix><Status>Disabled</Status><Expiration><Days>1</Days></Expiration>',
      ) +
      rule(
        '<ID>nc</ID><Prefix>v/</Prefix><Status>Enabled</Status><NoncurrentVersionExpiration><NoncurrentDays>2</NoncurrentDays><NewerNoncurrentVersions>1</NewerNoncurrentVersions></NoncurrentVersionExpiration><Expiration><ExpiredObjectDeleteMarker>true</ExpiredObjectDeleteMarker></Expiration>',
      ) +
      rule(
        '<ID>mpu</ID><Prefix>up/</Prefix><Status>Enabled</Status><AbortIncompleteMultipartUpload><DaysAfterInitiation>2</DaysAfterInitiation></AbortIncompleteMultipartUpload>',
      ),
  );
  const created = at('2026-11-24T23:20:00Z');

  describe('x-amz-expiration', () => {
    it('names the earliest matching rule and its rounded date', () => {
      expect(expirationHeader(config, { key: 'days1/foo', size: 3, lastModified: created })).toBe(
        'expiry-date="Thu, 26 Nov 2026 00:00:00 GMT", rule-id="days1"',
      );
      expect(expirationHeader(config, { key: 'days1/big', size: 5000, lastModified: created })).toContain(
        'rule-id="days1"',
      );
      expect(expirationHeader(config, { key: 'x/big', size: 5000, lastModified: created })).toBe(
        'expiry-date="Sat, 05 Dec 2026 00:00:00 GMT", rule-id="big"',
      );
      expect(expirationHeader(config, { key: 'old/a', size: 1, lastModified: created })).toBe(
        'expiry-date="Wed, 01 Jan 2020 00:00:00 GMT", rule-id="dated"',
      );
    });

    it('needs every tag of an And filter (test_lifecycle_expiration_header_and_tags_head)', () => {
      const obj = { key: 't/obj', size: 1, lastModified: created };
      expect(expirationHeader(config, { ...obj, tags: { key1: 'tag1', key5: 'tag5' } })).toBeUndefined();
      expect(
        expirationHeader(config, {
          ...obj,
          tags: [
            { key: 'key1', value: 'tag1' },
            { key: 'key5', value: 'tag6' },
          ],
        }),
      ).toContain('rule-id="tagged"');
    });

    it('says nothing without a configuration or a matching enabled rule', () => {
      expect(expirationHeader(undefined, { key: 'days1/a', size: 1, lastModified: created })).toBeUndefined();
      expect(expirationHeader(config, { key: 'other', size: 1, lastModified: created })).toBeUndefined();
      expect(expirationHeader(config, { key: 'x/small', size: 1000, lastModified: created })).toBeUndefined();
    });
  });

  describe('lifecycleActionFor', () => {
    const version = (over: Partial<LifecycleVersion>): LifecycleVersion => ({
      key: 'days1/a',
      size: 1,
      lastModified: created,
      isLatest: true,
      isDeleteMarker: false,
      ...over,
    });

    it('expires a current version once its due date has passed', () => {
      expect(lifecycleActionFor(config, version({}), at('2026-11-25T23:59:59Z'))).toBeUndefined();
      expect(lifecycleActionFor(config, version({}), at('2026-11-26T00:00:00Z'))).toEqual({
        type: 'ExpireCurrent',
        ruleId: 'days1',
        due: at('2026-11-26T00:00:00Z'),
      });
      expect(lifecycleActionFor(config, version({ key: 'old/x' }), created)).toMatchObject({
        type: 'ExpireCurrent',
        ruleId: 'dated',
      });
      expect(
        lifecycleActionFor(config, version({ key: 'none/x' }), created.getTime() + 1000 * day),
      ).toBeUndefined();
    });

    it('deletes noncurrent versions after NoncurrentDays, keeping NewerNoncurrentVersions', () => {
      const nc = (newer: number, since = created) =>
        version({ key: 'v/a', isLatest: false, noncurrentSince: since, newerNoncurrentVersions: newer });
      const later = at('2026-11-27T00:00:00Z');
      expect(lifecycleActionFor(config, nc(1), at('2026-11-26T23:00:00Z'))).toBeUndefined();
      expect(lifecycleActionFor(config, nc(1), later)).toEqual({
        type: 'DeleteNoncurrent',
        ruleId: 'nc',
        due: later,
      });
      expect(lifecycleActionFor(config, nc(0), later)).toBeUndefined();
      expect(lifecycleActionFor(config, { ...nc(3), isDeleteMarker: true, size: 0 }, later)).toMatchObject({
        type: 'DeleteNoncurrent',
      });
      expect(lifecycleActionFor(config, version({ key: 'v/a', isLatest: false }), later)).toBeUndefined();
    });

    it('removes a current delete marker only when it is the last version of its key', () => {
      const marker = (hasOtherVersions: boolean) =>
        version({ key: 'v/a', size: 0, isDeleteMarker: true, hasOtherVersions });
      expect(lifecycleActionFor(config, marker(false), created)).toEqual({
        type: 'RemoveExpiredDeleteMarker',
        ruleId: 'nc',
      });
      expect(lifecycleActionFor(config, marker(true), created)).toBeUndefined();
      expect(
        lifecycleActionFor(config, { ...marker(false), key: 'days1/a' }, created.getTime() + 100 * day),
      ).toBeUndefined();
    });
  });

  describe('incomplete multipart uploads', () => {
    it('dates the abort and says when it is due', () => {
      const upload = { key: 'up/big.bin', initiated: created };
      expect(abortDateFor(config, upload)).toEqual({ date: at('2026-11-27T00:00:00Z'), ruleId: 'mpu' });
      expect(abortRuleFor(config, upload, at('2026-11-26T23:59:59Z'))).toBeUndefined();
      expect(abortRuleFor(config, upload, at('2026-11-27T00:00:00Z'))).toBe('mpu');
      expect(abortDateFor(config, { key: 'other', initiated: created })).toBeUndefined();
      expect(abortDateFor(undefined, upload)).toBeUndefined();
    });
  });
});
