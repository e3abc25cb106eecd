// SVG charts, one per experiment that has one. To be filled in.
import { ResultData } from '../experiments/types';

export function resultSVG(_result: ResultData): string | undefined {
  return undefined;
}
