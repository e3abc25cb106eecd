// JSON for results: bigints become "0x…" strings.
import { hex } from './format';

function replace(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? hex(value) : value;
}

export function toJSON(value: unknown, indent = 2): string {
  return JSON.stringify(value, replace, indent);
}

/** The same conversion as a value (for toJSON methods and MIME bundles). */
export function toJSONValue(value: unknown): unknown {
  return JSON.parse(JSON.stringify(value, replace));
}
