// HTML views. To be filled in.
import { ResultData } from '../experiments/types';

export function resultHTML(result: ResultData): string {
  return `<section><h2>${result.question}</h2></section>`;
}
