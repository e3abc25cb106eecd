// Jupyter MIME bundles. To be filled in.
import { toJSONValue } from '../json';
import { ResultData } from '../experiments/types';

export function mimeBundle(result: ResultData): Record<string, unknown> {
  return { 'text/plain': `${result.name}: ${result.question}`, 'application/json': toJSONValue(result) };
}
