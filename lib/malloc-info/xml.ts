// A small XML reader for the one format malloc_info writes: elements,
// attributes, whitespace, comments, processing instructions (`<?xml …?>`) and
// CDATA. No DTDs. Text inside elements is allowed and ignored; outside the
// root it is an error. Every error is the report's: ERR_MALLOC_INFO.
import { HeapscopeError } from '../errors';

export interface XmlElement {
  name: string;
  attributes: Map<string, string>;
  children: XmlElement[];
  /** Offset of the element's `<` in the document. */
  at: number;
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_.:]*/y;
const SPACE = /[ \t\r\n]*/y;

/** Line and column of `offset`, for messages. */
export function where(xml: string, offset: number): string {
  let line = 1;
  let start = 0;
  for (let i = 0; i < offset && i < xml.length; i++) {
    if (xml.charCodeAt(i) === 10) {
      line++;
      start = i + 1;
    }
  }
  return `line ${line}, column ${offset - start + 1}`;
}

/** A malformed or unusable report. */
export function fail(message: string): HeapscopeError {
  return new HeapscopeError('ERR_MALLOC_INFO', `malloc_info: ${message}`);
}

export function readXml(xml: string): XmlElement {
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let pos = xml.charCodeAt(0) === 0xfeff ? 1 : 0;

  const malformed = (message: string, at: number): HeapscopeError =>
    fail(`malformed XML at ${where(xml, at)}: ${message}`);

  const skipPast = (terminator: string, from: number, what: string): number => {
    const end = xml.indexOf(terminator, from);
    if (end < 0) throw malformed(`unterminated ${what}`, from);
    return end + terminator.length;
  };

  while (pos < xml.length) {
    const lt = xml.indexOf('<', pos);
    const textEnd = lt < 0 ? xml.length : lt;
    if (stack.length === 0) {
      const text = xml.slice(pos, textEnd);
      const stray = text.search(/[^ \t\r\n]/);
      if (stray >= 0) {
        throw malformed(root === undefined ? 'text before the root element' : 'text after the root element', pos + stray);
      }
    }
    if (lt < 0) break;
    pos = lt;

    if (xml.startsWith('<!--', pos)) {
      pos = skipPast('-->', pos + 4, 'comment');
      continue;
    }
    if (xml.startsWith('<?', pos)) {
      pos = skipPast('?>', pos + 2, 'processing instruction');
      continue;
    }
    if (xml.startsWith('<![CDATA[', pos)) {
      if (stack.length === 0) throw malformed('CDATA outside the root element', pos);
      pos = skipPast(']]>', pos + 9, 'CDATA section');
      continue;
    }
    if (xml.startsWith('<!', pos)) throw malformed('DTDs and declarations are not supported', pos);

    if (xml.startsWith('</', pos)) {
      NAME.lastIndex = pos + 2;
      const name = NAME.exec(xml)?.[0];
      if (name === undefined) throw malformed('expected a name after "</"', pos + 2);
      SPACE.lastIndex = pos + 2 + name.length;
      SPACE.exec(xml);
      const close = SPACE.lastIndex;
      if (xml[close] !== '>') throw malformed(`expected ">" to end </${name}>`, close);
      const open = stack.pop();
      if (open === undefined) throw malformed(`</${name}> closes nothing`, pos);
      if (open.name !== name) {
        throw malformed(`</${name}> does not close <${open.name}> (opened at ${where(xml, open.at)})`, pos);
      }
      pos = close + 1;
      continue;
    }

    // A start tag or an empty-element tag.
    const at = pos;
    NAME.lastIndex = pos + 1;
    const name = NAME.exec(xml)?.[0];
    if (name === undefined) throw malformed('expected an element name after "<"', pos + 1);
    pos += 1 + name.length;
    const attributes = new Map<string, string>();
    let selfClosing = false;
    for (;;) {
      SPACE.lastIndex = pos;
      SPACE.exec(xml);
      const spaced = SPACE.lastIndex > pos;
      pos = SPACE.lastIndex;
      if (pos >= xml.length) throw malformed(`unterminated tag <${name}>`, at);
      if (xml.startsWith('/>', pos)) {
        selfClosing = true;
        pos += 2;
        break;
      }
      if (xml[pos] === '>') {
        pos += 1;
        break;
      }
      if (!spaced) throw malformed(`expected whitespace, ">" or "/>" in <${name}>`, pos);
      NAME.lastIndex = pos;
      const attribute = NAME.exec(xml)?.[0];
      if (attribute === undefined) throw malformed(`expected an attribute name in <${name}>`, pos);
      pos += attribute.length;
      SPACE.lastIndex = pos;
      SPACE.exec(xml);
      pos = SPACE.lastIndex;
      if (xml[pos] !== '=') throw malformed(`expected "=" after ${attribute} in <${name}>`, pos);
      SPACE.lastIndex = pos + 1;
      SPACE.exec(xml);
      pos = SPACE.lastIndex;
      const quote = xml[pos];
      if (quote !== '"' && quote !== "'") throw malformed(`expected a quoted value for ${attribute} in <${name}>`, pos);
      const end = xml.indexOf(quote, pos + 1);
      if (end < 0) throw malformed(`unterminated value of ${attribute} in <${name}>`, pos);
      const value = xml.slice(pos + 1, end);
      if (value.includes('<')) throw malformed(`"<" in the value of ${attribute} in <${name}>`, pos + 1 + value.indexOf('<'));
      if (attributes.has(attribute)) throw malformed(`duplicate attribute ${attribute} in <${name}>`, pos);
      attributes.set(attribute, decodeEntities(value, (message, offset) => malformed(message, pos + 1 + offset)));
      pos = end + 1;
    }

    const element: XmlElement = { name, attributes, children: [], at };
    const parent = stack[stack.length - 1];
    if (parent !== undefined) parent.children.push(element);
    else if (root !== undefined) throw malformed(`a second root element <${name}>`, at);
    else root = element;
    if (!selfClosing) stack.push(element);
  }

  const open = stack[stack.length - 1];
  if (open !== undefined) {
    throw fail(`malformed XML: <${open.name}> opened at ${where(xml, open.at)} is never closed (truncated report?)`);
  }
  if (root === undefined) throw fail('no <malloc> element: the document is empty or has no elements');
  return root;
}

const ENTITIES = new Map([['lt', '<'], ['gt', '>'], ['amp', '&'], ['quot', '"'], ['apos', "'"]]);

function decodeEntities(value: string, malformed: (message: string, offset: number) => HeapscopeError): string {
  return value.replace(/&([^;&]*);?/g, (match, body: string, offset: number) => {
    if (!match.endsWith(';')) throw malformed('"&" that does not start an entity reference', offset);
    const named = ENTITIES.get(body);
    if (named !== undefined) return named;
    const numeric = /^#(?:x([0-9A-Fa-f]+)|([0-9]+))$/.exec(body);
    const code = numeric === null ? NaN : numeric[1] !== undefined ? parseInt(numeric[1], 16) : parseInt(numeric[2], 10);
    if (!Number.isInteger(code) || code === 0 || code > 0x10ffff) throw malformed(`unknown entity &${body};`, offset);
    return String.fromCodePoint(code);
  });
}
