import { describe, expect, it } from 'vitest';
import { parseXml } from '../../platform/xml/parser.js';
import type { ObjectError } from './errors.js';
import {
  defaultRetainUntil,
  deleteBlockedBy,
  parseLockConfiguration,
  parseLockHeaders,
  retentionChangeAllowed,
} from './object-lock.js';

const code = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as ObjectError).s3Code;
  }
  return 'ok';
};

describe('object lock rules', () => {
  const at = Date.UTC(2026, 0, 31);
  const gov = { mode: 'GOVERNANCE' as const, until: at + 1000, legalHold: false };
  const comp = { mode: 'COMPLIANCE' as const, until: at + 1000, legalHold: false };

  it('parses configurations as AWS validates them', () => {
    const conf = (rule: string) =>
      parseXml(
        `<ObjectLockConfiguration><ObjectLockEnabled>Enabled</ObjectLockEnabled>${rule}</ObjectLockConfiguration>`,
      );
    expect(parseLockConfiguration(conf(''))).toEqual({});
    expect(
      parseLockConfiguration(
        conf('<Rule><DefaultRetention><Mode>COMPLIANCE</Mode><Years>1</Years></DefaultRetention></Rule>'),
      ),
    ).toEqual({ rule: { mode: 'COMPLIANCE', years: 1 } });
    expect(
      code(() =>
        parseLockConfiguration(
          conf('<Rule><DefaultRetention><Mode>X</Mode><Days>1</Days></DefaultRetention></Rule>'),
        ),
      ),
    ).toBe('MalformedXML');
    expect(
      code(() =>
        parseLockConfiguration(
          conf('<Rule><DefaultRetention><Mode>GOVERNANCE</Mode></DefaultRetention></Rule>'),
        ),
      ),
    ).toBe('MalformedXML');
    expect(
      code(() =>
        parseLockConfiguration(
          conf('<Rule><DefaultRetention><Mode>GOVERNANCE</Mode><Days>-1</Days></DefaultRetention></Rule>'),
        ),
      ),
    ).toBe('InvalidRetentionPeriod');
    expect(defaultRetainUntil({ rule: { mode: 'GOVERNANCE', years: 1 } }, at)).toBe(Date.UTC(2027, 0, 31));
  });

  it('reads lock headers', () => {
    const h = (m: Record<string, string>) => () => parseLockHeaders((n) => m[n]);
    expect(code(h({ 'x-amz-object-lock-mode': 'GOVERNANCE' }))).toBe('InvalidArgument');
    expect(code(h({ 'x-amz-object-lock-legal-hold': 'MAYBE' }))).toBe('InvalidArgument');
    expect(parseLockHeaders(() => undefined)).toBeUndefined();
  });

  it('blocks deletes under retention or legal hold; GOVERNANCE yields to the bypass', () => {
    expect(deleteBlockedBy(gov, at, false)).toBe('retention');
    expect(deleteBlockedBy(gov, at, true)).toBeUndefined();
    expect(deleteBlockedBy(comp, at, true)).toBe('retention');
    expect(deleteBlockedBy({ ...gov, until: at - 1 }, at, false)).toBeUndefined();
    expect(deleteBlockedBy({ mode: null, until: null, legalHold: true }, at, true)).toBe('legal hold');
  });

  it('lets COMPLIANCE only be extended and GOVERNANCE change only with the bypass', () => {
    expect(retentionChangeAllowed(comp, { mode: 'COMPLIANCE', until: at + 2000 }, at, false)).toBe(true);
    expect(retentionChangeAllowed(comp, { mode: 'COMPLIANCE', until: at + 500 }, at, true)).toBe(false);
    expect(retentionChangeAllowed(comp, null, at, true)).toBe(false);
    expect(retentionChangeAllowed(gov, { mode: 'COMPLIANCE', until: gov.until }, at, false)).toBe(false);
    expect(retentionChangeAllowed(gov, { mode: 'COMPLIANCE', until: gov.until }, at, true)).toBe(true);
    expect(retentionChangeAllowed(gov, { mode: 'GOVERNANCE', until: at + 5000 }, at, false)).toBe(true);
    expect(retentionChangeAllowed(gov, null, at, true)).toBe(true);
  });
});
