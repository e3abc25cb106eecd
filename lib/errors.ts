/**
 * Every error heapscope throws has a stable `code`. Bad arguments are
 * `TypeError`/`RangeError` (like Node's own `ERR_INVALID_ARG_TYPE`,
 * `ERR_OUT_OF_RANGE` and `ERR_ILLEGAL_CONSTRUCTOR`); allocator and kernel
 * failures are `HeapscopeError`s.
 */
export type ErrorCode =
  | 'ERR_INVALID_ARG_TYPE'
  | 'ERR_OUT_OF_RANGE'
  | 'ERR_ILLEGAL_CONSTRUCTOR'
  | 'ERR_DOUBLE_FREE'
  | 'ERR_UNKNOWN_POINTER'
  | 'ERR_FREED'
  | 'ERR_ALLOC_FAILED'
  | 'ERR_UNKNOWN_MALLOPT_PARAM'
  | 'ERR_MALLOPT_REJECTED'
  | 'ERR_INVALID_PLAN'
  | 'ERR_MALLOC_INFO'
  | 'ERR_READ_FAILED'
  | 'ERR_UNSUPPORTED_PLATFORM'
  | 'ERR_INVALID_TUNABLE'
  | 'ERR_UNKNOWN_EXPERIMENT'
  | 'ERR_EXPERIMENT_FAILED'
  | 'ERR_UNKNOWN_GLIBC_LAYOUT'
  | 'ERR_EXPERIMENT_TIMEOUT'
  | 'ERR_INTERNAL'
  | 'ERR_ALLOCATOR_NOT_FOUND'
  | 'ERR_NOT_IN_SNAPSHOT'
  | 'ERR_NOT_IN_HEAP'
  | 'ERR_NOT_A_SNAPSHOT'
  | 'ERR_SNAPSHOT_VERSION'
  | 'ERR_SNAPSHOT_CHANGED'
  | 'ERR_PROCESS_EXITED'
  | 'ERR_PERMISSION'
  | 'ERR_NOT_GLIBC_MALLOC'
  | 'ERR_EXEC_FAILED'
  | 'EFAULT';

export class HeapscopeError extends Error {
  readonly code: ErrorCode;
  /** The errno glibc or the kernel reported, where there was one. */
  declare readonly errno?: number;
  /** The call that failed (`malloc`, `process_vm_readv`, …), where there was one. */
  declare readonly syscall?: string;

  constructor(code: ErrorCode, message: string, details: { errno?: number; syscall?: string } = {}) {
    super(message);
    this.name = 'HeapscopeError';
    this.code = code;
    // Defined, not assigned: an accessor someone put on Object.prototype
    // under these names would meet an assignment (validate.ts's defineOwn
    // and descriptor, which this module sits below).
    const field = (value: unknown) => Object.setPrototypeOf({ value, writable: true, enumerable: true, configurable: true }, null) as PropertyDescriptor;
    const errno = Object.hasOwn(details, 'errno') ? details.errno : undefined;
    const syscall = Object.hasOwn(details, 'syscall') ? details.syscall : undefined;
    if (errno !== undefined) Object.defineProperty(this, 'errno', field(errno));
    if (syscall !== undefined) Object.defineProperty(this, 'syscall', field(syscall));
  }
}

export function typeError(message: string, cause?: unknown): TypeError & { code: 'ERR_INVALID_ARG_TYPE' } {
  const error = cause === undefined ? new TypeError(message) : new TypeError(message, { cause });
  return Object.assign(error, { code: 'ERR_INVALID_ARG_TYPE' as const });
}

export function rangeError(message: string): RangeError & { code: 'ERR_OUT_OF_RANGE' } {
  return Object.assign(new RangeError(message), { code: 'ERR_OUT_OF_RANGE' as const });
}

/** A class whose instances only heapscope makes, constructed from outside (like Node's own). */
export function illegalConstructor(message: string): TypeError & { code: 'ERR_ILLEGAL_CONSTRUCTOR' } {
  return Object.assign(new TypeError(message), { code: 'ERR_ILLEGAL_CONSTRUCTOR' as const });
}

/**
 * The native layer throws plain `Error`s with `code`, `errno` and `syscall`;
 * this turns one into a `HeapscopeError` so that callers see one class.
 */
export function fromNative(error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof HeapscopeError) return error;
  // Its own fields only: what Object.prototype may carry under these names is none of the addon's.
  const field = (key: string): unknown => (Object.hasOwn(error, key) ? (error as unknown as Record<string, unknown>)[key] : undefined);
  const code = field('code');
  if (typeof code !== 'string') return error;
  if (code === 'ERR_OUT_OF_RANGE') return rangeError(error.message);
  if (code === 'ERR_INVALID_ARG_TYPE') return typeError(error.message);
  const errno = field('errno');
  const syscall = field('syscall');
  return new HeapscopeError(code as ErrorCode, error.message, {
    ...(typeof errno === 'number' ? { errno } : {}), ...(typeof syscall === 'string' ? { syscall } : {}),
  });
}

/** Calls into the native layer, rethrowing its errors as `HeapscopeError`s. */
export function native<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNative(error);
  }
}
