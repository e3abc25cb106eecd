// Checks for the XML the views write (SVG documents, HTML fragments' inline SVG), without an XML library.

const NAME = '[A-Za-z_][\\w.:-]*';
const ATTR = new RegExp(`^\\s+(${NAME})\\s*=\\s*("[^"<]*"|'[^'<]*')`);
const ENTITY = /&(?:amp|lt|gt|quot|apos|#\d+|#x[0-9a-fA-F]+);/g;

/** Throws with the offset and reason at the first place the document is not well-formed XML. */
export function checkWellFormed(xml: string): void {
  const stack: string[] = [];
  let i = 0;
  let roots = 0;
  const fail = (why: string): never => {
    throw new Error(`not well-formed at ${i}: ${why}: ${JSON.stringify(xml.slice(Math.max(0, i - 40), i + 40))}`);
  };
  const checkText = (s: string) => {
    if (s.replace(ENTITY, '').includes('&')) fail('a bare & (unescaped)');
  };
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    const chunk = lt === -1 ? xml.slice(i) : xml.slice(i, lt);
    checkText(chunk);
    if (stack.length === 0 && chunk.trim() !== '') fail('text outside the root element');
    if (lt === -1) break;
    i = lt;
    if (xml.startsWith('<!--', i)) {
      const end = xml.indexOf('-->', i);
      if (end === -1) fail('unterminated comment');
      i = end + 3;
      continue;
    }
    const close = new RegExp(`^</(${NAME})\\s*>`).exec(xml.slice(i));
    if (close !== null) {
      const open = stack.pop();
      if (open !== close[1]) fail(`</${close[1]}> closes <${open ?? 'nothing'}>`);
      i += close[0].length;
      continue;
    }
    const open = new RegExp(`^<(${NAME})`).exec(xml.slice(i));
    if (open === null) fail('a < that starts no tag');
    if (stack.length === 0 && ++roots > 1) fail('more than one root element');
    i += open![0].length;
    const seen = new Set<string>();
    for (;;) {
      const attr = ATTR.exec(xml.slice(i));
      if (attr === null) break;
      if (seen.has(attr[1])) fail(`attribute ${attr[1]} twice`);
      seen.add(attr[1]);
      checkText(attr[2]);
      i += attr[0].length;
    }
    const end = /^\s*(\/?)>/.exec(xml.slice(i));
    if (end === null) fail(`malformed tag <${open![1]}`);
    i += end![0].length;
    if (end![1] !== '/') stack.push(open![1]);
  }
  if (stack.length > 0) fail(`unclosed <${stack.join('> <')}>`);
  if (roots !== 1) fail('no root element');
}

/** The text content of every <text> element, entities decoded. */
export function svgTexts(svg: string): string[] {
  return [...svg.matchAll(/<text\b[^>]*>([^<]*)<\/text>/g)].map((m) =>
    m[1].replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&amp;/g, '&'));
}
