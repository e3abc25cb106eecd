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
    if (details.errno !== undefined) this.errno = details.errno;
    if (details.syscall !== undefined) this.syscall = details.syscall;
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
  const e = error as Error & { code?: string; errno?: number; syscall?: string };
  if (typeof e.code !== 'string') return error;
  if (e.code === 'ERR_OUT_OF_RANGE') return rangeError(e.message);
  if (e.code === 'ERR_INVALID_ARG_TYPE') return typeError(e.message);
  return new HeapscopeError(e.code as ErrorCode, e.message, { errno: e.errno, syscall: e.syscall });
}

/** Calls into the native layer, rethrowing its errors as `HeapscopeError`s. */
export function native<T>(call: () => T): T {
  try {
    return call();
  } catch (error) {
    throw fromNative(error);
  }
}
