// Charts as data: what to draw and where, not how. Experiments build theirs
// from their rows (lib/experiments/<name>/chart.ts and terminal.ts); the
// views draw any of them without knowing whose they are: a figure as SVG
// (lib/views/charts/figure.ts), a terminal chart in Unicode
// (lib/views/terminal-charts.ts).
import type { ColourName } from './table-spec';

// ---------------------------------------------------------------- terminal

/** A step function over x: y holds from each point until the next. */
export interface StepChart {
  kind: 'steps';
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

/** A character and its colour. */
export interface Glyph {
  /** One code point: a legend colours each wherever it appears. */
  symbol: string;
  colour?: ColourName;
}

/**
 * Points on one shared log-2 scale of x, a line of them per row: each column
 * shows the glyph of the points in it, `clash` where points of two glyphs
 * share it, `empty` where there is none.
 */
export interface StripChart {
  kind: 'strips';
  title: string;
  /** Each row's name (right-aligned before its strip) and its points, each with a glyph named in `glyphs`. */
  rows: { name: string; points: { x: number; glyph: string }[] }[];
  /** The glyphs by name, in the legend's order, each with what it means. */
  glyphs: Record<string, Glyph & { label: string }>;
  clash: Glyph & { label: string };
  empty: Glyph;
  /** Values to mark under the strips, where they fit. */
  ticks: { x: number; label: string }[];
}

/**
 * Rungs from top to bottom, each a label (right-aligned), a glyph, a
 * coloured tag (left-aligned) and text that wraps; between two rungs a
 * link: a glyph under the rungs' glyphs and a dim caption.
 */
export interface LadderChart {
  kind: 'ladder';
  title: string;
  rungs: { label: string; glyph: Glyph; tag: string; tagColour?: ColourName; text: string }[];
  /** Between rung i and rung i + 1. */
  links: { glyph: Glyph; caption: string }[];
}

export type TerminalChart = StepChart | StripChart | LadderChart;

// ---------------------------------------------------------------- figures

/**
 * Presentation attributes by their SVG names (stroke, fill, class …), in
 * the order written: a figure is drawn byte for byte the same every time.
 */
export type Attrs = Record<string, string | number | undefined>;

export type Point = readonly [number, number];

export interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

/** A chart laid out on a page `width` × `height` px, its marks drawn in order, later ones on top. */
export interface Figure {
  width: number;
  height: number;
  /** What the figure shows, for a reader who cannot see it. */
  title: string;
  marks: Mark[];
}

/** An axis line with its ticks, tick labels and title; positions in px. */
export interface Axis {
  mark: 'axis';
  /** `left`: a y axis along x = `at`; `bottom`: an x axis along y = `at`. */
  side: 'left' | 'bottom';
  at: number;
  /** Where the axis runs along its length, from the scale's low end to its high end. */
  range: [number, number];
  ticks: { at: number; label: string }[];
  title: string;
  /** A left axis: light grid lines across to this x. */
  gridTo?: number;
  /** A left axis: its title turned along it, at the page's left edge, instead of above it. */
  titleAside?: boolean;
}

export interface LegendEntry {
  label: string;
  color: string;
  /** A dashed line's dash pattern. */
  dash?: string;
  /** A filled box instead of a line. */
  box?: boolean;
}

/** Where a label may go: around a point drawn with radius r, or along a horizontal line. */
export type LabelAnchor = { around: { x: number; y: number; r: number } } | { along: { x0: number; x1: number; y: number } };

/**
 * Labels the drawing lays out, since it knows how wide a text is: each goes
 * to the first spot near its anchor that stays inside `bounds` and covers
 * nothing in `avoid` nor a label placed before it, preferring one that no
 * line in `avoid.lines` runs through.
 */
export interface Labels {
  mark: 'labels';
  fontSize: number;
  bounds?: Box;
  avoid: {
    /** Points drawn with radius r, stroke included. */
    points?: { x: number; y: number; r: number }[];
    /** Other text, at the figure's font size. */
    texts?: { x: number; y: number; text: string }[];
    lines?: Point[][];
  };
  labels: (LabelAnchor & { text: string; attrs?: Attrs })[];
}

export type Mark =
  | { mark: 'rect'; x: number; y: number; width: number; height: number; attrs?: Attrs }
  | { mark: 'line'; x1: number; y1: number; x2: number; y2: number; attrs?: Attrs }
  /** Straight segments through the points. */
  | { mark: 'polyline'; points: Point[]; attrs?: Attrs }
  /** Across to each point's x, then up or down to its y. */
  | { mark: 'steps'; points: Point[]; attrs?: Attrs }
  | { mark: 'circle'; x: number; y: number; r: number; attrs?: Attrs }
  /** An ✕ reaching `size` px from its centre each way. */
  | { mark: 'cross'; x: number; y: number; size: number; attrs?: Attrs }
  /** A wavy line from x0 to x1: where a scale is cut. */
  | { mark: 'zigzag'; x0: number; x1: number; y: number; attrs?: Attrs }
  | { mark: 'text'; x: number; y: number; text: string; attrs?: Attrs }
  | { mark: 'legend'; x: number; y: number; entries: LegendEntry[] }
  | Axis
  | Labels;

/** Colours that stay apart for colour-blind readers (Tableau 10). */
export const COLORS = {
  blue: '#4e79a7',
  orange: '#f28e2b',
  red: '#e15759',
  teal: '#76b7b2',
  green: '#59a14f',
  yellow: '#edc948',
  purple: '#b07aa1',
  pink: '#ff9da7',
  brown: '#9c755f',
  grey: '#8c8c8c',
} as const;

/** A white outline under a label, so that it stays readable over lines and points. */
export const HALO: Attrs = { stroke: '#fff', 'stroke-width': 3, 'paint-order': 'stroke', 'stroke-linejoin': 'round' };
