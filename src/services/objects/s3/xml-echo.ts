import type { XmlElement } from '../../../platform/xml/parser.js';
import { elAttrs, type Xml, xmlDocument } from '../../../platform/xml/writer.js';

/** Writes a parsed element tree back as a document (stored configurations are returned as they were given). */
export function renderElement(root: XmlElement, xmlns: string): string {
  const walk = (e: XmlElement, attrs: Record<string, string>): Xml =>
    elAttrs(e.name, attrs, e.children.length > 0 ? e.children.map((c) => walk(c, keepAttrs(c))) : e.text);
  return xmlDocument(walk(root, { ...keepAttrs(root), xmlns }));
}

/** Attributes worth keeping (xsi:type on ACL grantees); namespace declarations are rewritten. */
function keepAttrs(e: XmlElement): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.attrs)) {
    if (k === 'xmlns' || (k.startsWith('xmlns:') && k !== 'xmlns:xsi')) continue;
    out[k] = v;
  }
  if (Object.keys(out).some((k) => k.startsWith('xsi:')))
    out['xmlns:xsi'] = 'http://www.w3.org/2001/XMLSchema-instance';
  return out;
}
