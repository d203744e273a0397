/**
 * A very small XML writer for AWS responses (Query, S3). Markup only comes out of `el()`, so every
 * string that reaches a document is escaped: text can never open a tag or an entity.
 */

export type XmlContent = Xml | string | number | boolean | null | undefined | readonly XmlContent[];

const NAME = /^[A-Za-z_][A-Za-z0-9_.-]*(:[A-Za-z_][A-Za-z0-9_.-]*)?$/;
/** Characters XML 1.0 does not allow at all (controls, lone surrogates, U+FFFE/U+FFFF). */
const NOT_XML_CHAR = /[^\t\n\r\x20-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu;
const ESCAPES: Record<string, string> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  '\r': '&#13;',
};

/**
 * Escapes text for element content or a double-quoted attribute (so `'` needs no escape); characters
 * XML cannot carry become U+FFFD, and CR is kept as a reference so parsers do not normalise it away.
 */
export function escapeXml(text: string): string {
  return text.replace(NOT_XML_CHAR, '\uFFFD').replace(/[&<>"\r]/g, (c) => ESCAPES[c]!);
}

/** A well-formed fragment of markup. Only `el()` makes one. */
export class Xml {
  readonly #markup: string;

  private constructor(markup: string) {
    this.#markup = markup;
  }

  toString(): string {
    return this.#markup;
  }

  static element(
    name: string,
    attrs: Readonly<Record<string, string>> | null,
    content: readonly XmlContent[],
  ): Xml {
    if (!NAME.test(name)) throw new Error(`invalid XML element name: ${name}`);
    let open = name;
    for (const [attr, value] of Object.entries(attrs ?? {})) {
      if (!NAME.test(attr)) throw new Error(`invalid XML attribute name: ${attr}`);
      open += ` ${attr}="${escapeXml(value)}"`;
    }
    const inner = render(content);
    return new Xml(inner === '' ? `<${open}/>` : `<${open}>${inner}</${name}>`);
  }
}

function render(content: readonly XmlContent[]): string {
  let out = '';
  for (const c of content) {
    if (c === null || c === undefined) continue;
    if (c instanceof Xml) out += c.toString();
    else if (Array.isArray(c)) out += render(c);
    else if (typeof c === 'number') {
      if (!Number.isFinite(c)) throw new Error(`cannot write ${c} as XML`);
      out += String(c);
    } else out += escapeXml(String(c));
  }
  return out;
}

/** `<name>content</name>`; null and undefined content is skipped, arrays are flattened. */
export const el = (name: string, ...content: XmlContent[]): Xml => Xml.element(name, null, content);

/** `<name a="v">content</name>` */
export const elAttrs = (
  name: string,
  attrs: Readonly<Record<string, string>>,
  ...content: XmlContent[]
): Xml => Xml.element(name, attrs, content);

/** The element, or nothing when the value is absent (optional response members). */
export const optional = (
  name: string,
  value: string | number | boolean | null | undefined,
): Xml | undefined => (value === null || value === undefined ? undefined : el(name, value));

export const xmlDocument = (root: Xml): string =>
  `<?xml version="1.0" encoding="UTF-8"?>\n${root.toString()}`;

/** AWS writes timestamps as ISO 8601 in UTC without fractions: 2024-05-01T12:00:00Z. */
export const awsDate = (v: string | number | Date): string =>
  new Date(v).toISOString().replace(/\.\d{3}Z$/, 'Z');
