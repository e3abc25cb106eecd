// C struct layout on x86_64 (the SysV psABI): each field is placed at the next
// multiple of its alignment, and the struct's size is rounded up to its
// largest field alignment. glibc's malloc structs are plain C, so their
// offsets follow from the declared field types alone; writing them as field
// lists keeps the table below close to malloc.c, and the gdb test checks the
// result against the compiler's own layout.

/** The C types malloc's structs use, as x86_64 lays them out. */
export type CType = 'char' | 'uint8_t' | 'uint16_t' | 'int' | 'unsigned int' | 'size_t' | 'pointer';

/** Size and alignment of each type (LP64: int 4, long, size_t and pointers 8). */
export const C_TYPES: Readonly<Record<CType, { size: number; align: number }>> = {
  char: { size: 1, align: 1 },
  uint8_t: { size: 1, align: 1 },
  uint16_t: { size: 2, align: 2 },
  int: { size: 4, align: 4 },
  'unsigned int': { size: 4, align: 4 },
  size_t: { size: 8, align: 8 },
  pointer: { size: 8, align: 8 },
};

export interface FieldLayout {
  /** glibc's name for the field, as gdb prints it. */
  name: string;
  type: CType;
  /** Elements: 1 for a scalar, N for an array `[N]`. */
  count: number;
  /** Byte offset from the start of the struct. */
  offset: number;
  /** Bytes the whole field takes (count × element size). */
  size: number;
}

export interface StructLayout {
  /** The C name, e.g. `struct malloc_state`. */
  name: string;
  size: number;
  align: number;
  /** In declaration order. */
  fields: readonly FieldLayout[];
}

/** One declared field: [name, type] or [name, type, array length]. */
export type FieldDecl = readonly [name: string, type: CType, count?: number];

/** Lays out `fields` in declaration order as the C compiler does. */
export function cStruct(name: string, decls: readonly FieldDecl[]): StructLayout {
  let offset = 0;
  let align = 1;
  const fields: FieldLayout[] = [];
  for (const [field, type, count = 1] of decls) {
    const t = C_TYPES[type];
    offset = roundUp(offset, t.align);
    fields.push({ name: field, type, count, offset, size: t.size * count });
    offset += t.size * count;
    align = Math.max(align, t.align);
  }
  return { name, size: roundUp(offset, align), align, fields };
}

/** The field called `name`, or undefined when this version's struct has none. */
export function fieldOf(layout: StructLayout, name: string): FieldLayout | undefined {
  return layout.fields.find((f) => f.name === name);
}

/** The offset of field `name`, which the caller knows every version's struct has. */
export function offsetOf(layout: StructLayout, name: string): number {
  const field = fieldOf(layout, name);
  if (field === undefined) throw new Error(`${layout.name} has no field ${name}`);
  return field.offset;
}

function roundUp(n: number, to: number): number {
  return Math.ceil(n / to) * to;
}
