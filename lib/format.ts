// Number formatting shared by findings, the CLI and the views.

/** `0x` + lowercase hex. */
export function hex(value: bigint | number): string {
  return `0x${value.toString(16)}`;
}

/** Bytes for a reader: exact below 1 KiB, else KiB/MiB/GiB with up to 1 decimal plus the exact count. */
export function bytes(value: bigint | number): string {
  const n = Number(value);
  const sign = n < 0 ? '-' : '';
  const abs = Math.abs(n);
  if (abs < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let scaled = abs / 1024;
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  const text = Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(1);
  return `${sign}${text} ${units[unit]} (${n} B)`;
}

/** Bytes, short: `24 B`, `128 KiB`, `1.5 MiB`. */
export function shortBytes(value: bigint | number): string {
  return bytes(value).replace(/ \(.*\)$/, '');
}
