// How records show themselves (util.inspect at a prompt, a MIME bundle in a
// notebook, SVG and HTML) is drawn by the view layer, which records must not
// import. So each record type owns a slot here that it calls through, and
// the views fill the slots when an entry point loads them (lib/present.ts).
import type { InspectOptionsStylized } from 'node:util';
import { HeapscopeError } from './errors';

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
