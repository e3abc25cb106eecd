// One line of progress on a terminal ("running free (6 of 9)"), redrawn in
// place with \r and erased with spaces, so that it needs no escape codes.
// Off when the stream is not a terminal: piped output stays clean.

export interface ProgressStream {
  isTTY?: boolean;
  columns?: number;
  write(text: string): unknown;
}

export class ProgressLine {
  private shown = 0;

  constructor(private readonly stream: ProgressStream) {}

  show(text: string): void {
    if (this.stream.isTTY !== true) return;
    // A line that wrapped could not be redrawn with \r.
    const width = (this.stream.columns ?? 0) > 1 ? this.stream.columns! - 1 : Infinity;
    const line = text.length > width ? text.slice(0, width) : text;
    this.stream.write(`\r${line}${' '.repeat(Math.max(0, this.shown - line.length))}`);
    this.shown = line.length;
  }

  clear(): void {
    if (this.shown === 0) return;
    this.stream.write(`\r${' '.repeat(this.shown)}\r`);
    this.shown = 0;
  }
}
