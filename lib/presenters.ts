// How records show themselves (util.inspect at a prompt, a MIME bundle in a
// notebook, SVG and HTML) is drawn by the view layer, which records must not
// import. So each record type owns a slot here that it calls through, and
// the views fill the slots when an entry point loads them (lib/present.ts).
import { inspect, InspectOptionsStylized } from 'node:util';
import { HeapscopeError } from './errors';
import { descriptor } from './validate';

/** What util.inspect passes a custom inspector. */
export type InspectContext = Partial<InspectOptionsStylized>;

/** mimetype → data, as a Jupyter `display_data` / `execute_result` carries it. */
export type MimeBundle = Record<string, unknown>;

/** One record type's views, filled once by the view layer. */
export interface Presenter<Views extends object> {
  install(views: Views): void;
  /** The installed views; ERR_INTERNAL if no entry point loaded them. */
  readonly views: Views;
}

export function presenter<Views extends object>(what: string): Presenter<Views> {
  let installed: Views | undefined;
  return {
    install(views) {
      installed = views;
    },
    get views() {
      if (installed === undefined) throw new HeapscopeError('ERR_INTERNAL', `the views of ${what} are not loaded: load heapscope through its entry point`);
      return installed;
    },
  };
}

/**
 * Gives a plain data record its REPL view as a non-enumerable method, so
 * that it stays plain data to JSON, spreads, structuredClone and equality
 * checks. `view` is called at each use: the view layer fills its slot later.
 */
export function withInspect<T extends object>(view: (value: T, depth: number, options: InspectContext) => string, value: T): T {
  return Object.defineProperty(value, inspect.custom, descriptor({
    value(this: T, depth: number, options: InspectContext) {
      return view(this, depth, options);
    },
  }));
}

/** A record's views beside its REPL line: a notebook's MIME bundle, Markdown and an HTML fragment. */
export interface DocumentViews<T> {
  inspect(value: T, depth: number, options: InspectContext): string;
  bundle(value: T): MimeBundle;
  markdown(value: T): string;
  html(value: T): string;
}

/** What withDocumentViews adds to a record. */
export interface DocumentMethods {
  /** The record as Markdown: a heading, what it says, and its tables. */
  toMarkdown(): string;
  /** A self-contained HTML fragment: inline CSS, no scripts, nothing fetched. */
  toHTML(): string;
}

/**
 * withInspect, plus `toMarkdown()`, `toHTML()`, Deno's
 * `Symbol.for('Jupyter.display')` and ijavascript's `_toMime()`, all
 * non-enumerable.
 */
export function withDocumentViews<T extends object>(value: T, views: () => DocumentViews<T>): T & DocumentMethods {
  withInspect((v, depth, options) => views().inspect(v, depth, options), value);
  const methods: Record<string | symbol, (this: T) => unknown> = {
    toMarkdown() { return views().markdown(this); },
    toHTML() { return views().html(this); },
    [Symbol.for('Jupyter.display')]() { return views().bundle(this); },
    _toMime() { return views().bundle(this); },
  };
  for (const key of Reflect.ownKeys(methods)) Object.defineProperty(value, key, descriptor({ value: methods[key as string] }));
  return value as T & DocumentMethods;
}
