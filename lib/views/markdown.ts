// Markdown views. To be filled in.
import { ResultData } from '../experiments/types';

export function resultMarkdown(result: ResultData): string {
  return `## ${result.question}\n`;
}
