import { describe, expect, it } from 'vitest';
import { childrenNamed, childText, parseXml, XmlParseError } from './parser.js';

describe('the XML parser', () => {
  it('builds a tree with text, attributes, entities, CDATA and dropped namespace prefixes', () => {
    const root = parseXml(
      `<?xml version="1.0" encoding="UTF-8"?>\n<!-- c --><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Object><Key> a&amp;b &lt;&#x41;&#66;</Key></Object><s3:Object><Key><![CDATA[<raw>]]></Key></s3:Object>` +
        `<Quiet>true</Quiet><Empty a='1' b="&quot;"/></Delete>`,
    );
    expect(root.name).toBe('Delete');
    expect(root.attrs.xmlns).toBe('http://s3.amazonaws.com/doc/2006-03-01/');
    expect(childrenNamed(root, 'Object').map((o) => childText(o, 'Key'))).toEqual([' a&b <AB', '<raw>']);
    expect(childText(root, 'Quiet')).toBe('true');
    expect(childrenNamed(root, 'Empty')[0]?.attrs).toEqual({ a: '1', b: '"' });
  });

  it.each([
    ['unclosed', '<A><B></B>'],
    ['mismatched', '<A></B>'],
    ['two roots', '<A/><B/>'],
    ['text outside', 'x<A/>'],
    ['doctype', '<!DOCTYPE a [<!ENTITY x "y">]><A>&x;</A>'],
    ['unknown entity', '<A>&nbsp;</A>'],
    ['bare ampersand', '<A>a & b</A>'],
    ['empty', ''],
    ['late declaration', '<A/><?xml version="1.0"?>'],
    ['bad char ref', '<A>&#0;</A>'],
    ['duplicate attribute', '<A x="1" x="2"/>'],
  ])('refuses %s input', (_what, xml) => {
    expect(() => parseXml(xml)).toThrow(XmlParseError);
  });

  it('refuses nesting deeper than the limit', () => {
    expect(() => parseXml('<a>'.repeat(40) + '</a>'.repeat(40))).toThrow(/deeper/);
    expect(parseXml('<a>'.repeat(10) + '</a>'.repeat(10), { maxDepth: 10 }).name).toBe('a');
  });
});
