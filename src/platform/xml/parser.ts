/**
 * A small, strict XML parser for request bodies (S3 configuration documents, DeleteObjects,
 * CompleteMultipartUpload). It builds a plain element tree and refuses anything a request body
 * has no business carrying: DOCTYPE declarations (so no entity expansion or external entities),
 * unknown entities, mismatched or unclosed tags, text outside the root, and nesting deeper than
 * `maxDepth`. Namespace prefixes are dropped from names (`s3:Key` is `Key`); attributes are kept
 * with their qualified names.
 */

export interface XmlElement {
  /** Local name (no namespace prefix). */
  name: string;
  attrs: Record<string, string>;
  children: XmlElement[];
  /** Concatenated character data directly inside this element, untrimmed. */
  text: string;
}

export class XmlParseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'XmlParseError';
  }
}

const NAME_START = /[A-Za-z_:\u00C0-\uFFFF]/;
const NAME_CHAR = /[A-Za-z0-9_:.\-\u00B7\u00C0-\uFFFF]/;
const PREDEFINED: Record<string, string> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

function decodeEntities(raw: string): string {
  if (!raw.includes('&')) return raw;
  return raw.replace(/&([^;&\s]{0,12});?/g, (whole, ref: string) => {
    if (!whole.endsWith(';')) throw new XmlParseError(`unterminated entity reference near '${whole}'`);
    if (ref.startsWith('#')) {
      const cp = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      const valid =
        Number.isInteger(cp) &&
        /^#(x[0-9a-fA-F]+|[0-9]+)$/.test(ref) &&
        (cp === 0x9 ||
          cp === 0xa ||
          cp === 0xd ||
          (cp >= 0x20 && cp <= 0xd7ff) ||
          (cp >= 0xe000 && cp <= 0xfffd) ||
          (cp >= 0x10000 && cp <= 0x10ffff));
      if (!valid) throw new XmlParseError(`invalid character reference &${ref};`);
      return String.fromCodePoint(cp);
    }
    const v = PREDEFINED[ref];
    if (v === undefined) throw new XmlParseError(`unknown entity &${ref};`);
    return v;
  });
}

const localName = (qname: string) => {
  const colon = qname.indexOf(':');
  return colon < 0 ? qname : qname.slice(colon + 1);
};

/** Parses one XML document into its root element. Throws XmlParseError on anything malformed. */
export function parseXml(input: string, opts: { maxDepth?: number } = {}): XmlElement {
  const maxDepth = opts.maxDepth ?? 32;
  const s = input.charCodeAt(0) === 0xfeff ? input.slice(1) : input;
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;

  const fail = (msg: string): never => {
    throw new XmlParseError(`${msg} at offset ${i}`);
  };
  const readName = (): string => {
    const start = i;
    if (!NAME_START.test(s[i] ?? '')) fail('expected a name');
    i++;
    while (i < s.length && NAME_CHAR.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  const skipSpace = () => {
    while (i < s.length && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n' || s[i] === '\r')) i++;
  };

  while (i < s.length) {
    const lt = s.indexOf('<', i);
    const textEnd = lt < 0 ? s.length : lt;
    if (textEnd > i) {
      const text = s.slice(i, textEnd);
      const top = stack[stack.length - 1];
      if (top) top.text += decodeEntities(text);
      else if (text.trim() !== '') fail('text outside the root element');
      if (text.includes(']]>')) fail("']]>' in text");
      i = textEnd;
      continue;
    }
    // s[i] === '<'
    if (s.startsWith('<?', i)) {
      const end = s.indexOf('?>', i + 2);
      if (end < 0) fail('unterminated processing instruction');
      // The XML declaration may only open the document; other processing instructions are skipped.
      if (/^xml[\s?]/i.test(s.slice(i + 2, i + 6)) && i !== 0) fail('XML declaration not at the start');
      i = end + 2;
      continue;
    }
    if (s.startsWith('<!--', i)) {
      const end = s.indexOf('-->', i + 4);
      if (end < 0) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    if (s.startsWith('<![CDATA[', i)) {
      const top = stack[stack.length - 1];
      if (!top) fail('CDATA outside the root element');
      const end = s.indexOf(']]>', i + 9);
      if (end < 0) fail('unterminated CDATA section');
      top!.text += s.slice(i + 9, end);
      i = end + 3;
      continue;
    }
    if (s.startsWith('<!', i)) fail('DOCTYPE and other declarations are not accepted');
    if (s[i + 1] === '/') {
      i += 2;
      const name = readName();
      skipSpace();
      if (s[i] !== '>') fail(`expected '>' to close </${name}`);
      i++;
      const top = stack.pop();
      if (!top || top.name !== localName(name)) fail(`unexpected closing tag </${name}>`);
      continue;
    }
    // start tag
    i++;
    const qname = readName();
    const el: XmlElement = { name: localName(qname), attrs: {}, children: [], text: '' };
    for (;;) {
      const before = i;
      skipSpace();
      if (s[i] === '>' || s.startsWith('/>', i)) break;
      if (i === before) fail(`expected whitespace before an attribute in <${qname}>`);
      const attr = readName();
      skipSpace();
      if (s[i] !== '=') fail(`expected '=' after attribute ${attr}`);
      i++;
      skipSpace();
      const quote = s[i];
      if (quote !== '"' && quote !== "'") fail(`expected a quoted value for attribute ${attr}`);
      const end = s.indexOf(quote!, i + 1);
      if (end < 0) fail(`unterminated value of attribute ${attr}`);
      const raw = s.slice(i + 1, end);
      if (raw.includes('<')) fail(`'<' in the value of attribute ${attr}`);
      if (Object.hasOwn(el.attrs, attr)) fail(`duplicate attribute ${attr}`);
      el.attrs[attr] = decodeEntities(raw);
      i = end + 1;
    }
    const selfClosing = s[i] === '/';
    i += selfClosing ? 2 : 1;
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else if (root) fail('more than one root element');
    else root = el;
    if (!selfClosing) {
      if (stack.length >= maxDepth) fail(`elements nested deeper than ${maxDepth}`);
      stack.push(el);
    }
  }
  if (stack.length > 0) throw new XmlParseError(`unclosed element <${stack[stack.length - 1]!.name}>`);
  if (!root) throw new XmlParseError('no root element');
  return root;
}

/** The first child element called `name`, if any. */
export const childNamed = (el: XmlElement, name: string): XmlElement | undefined =>
  el.children.find((c) => c.name === name);

/** Every child element called `name`. */
export const childrenNamed = (el: XmlElement, name: string): XmlElement[] =>
  el.children.filter((c) => c.name === name);

/** Text of the first child called `name` (untrimmed), or undefined when there is none. */
export const childText = (el: XmlElement, name: string): string | undefined => childNamed(el, name)?.text;
