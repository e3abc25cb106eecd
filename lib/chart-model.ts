// Charts as data: what to draw, not how. The views draw them (a step chart
// in Unicode for a terminal: lib/views/terminal.ts).
import type { ColourName } from './table-spec';

/** A step function over x: y holds from each point until the next. */
export interface StepChart {
  title: string;
  /** Points of a step function, x ascending: y holds until the next x. */
  xs: number[];
  ys: number[];
  /** Rows of the plot; y is linear over them, from the lowest y to the highest. */
  height: number;
  /** A label on every row (when each row is one value, as on the staircase), else top, middle and bottom. */
  labelEveryRow?: boolean;
  xLabel(x: number): string;
  yLabel(y: number): string;
  xName: string;
  colour: ColourName;
  /** x values per column, when the x axis should fall on whole numbers. */
  perColumn?: number;
  /** Names to print under the x axis where an x starts (phases). */
  marks?: { x: number; label: string }[];
}
