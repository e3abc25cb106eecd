// The environment of a program a test starts that is not heapscope (a C
// target, Debian's python3, gdb, chromium): `env` (this process's by
// default) without the preload this process itself runs under, the
// sanitizer run's ASan (scripts/sanitize.sh); a preload the test asks for
// itself (jemalloc) stays. None of these programs runs heapscope's code.
// Under ASan's preload chromium spun at full CPU, orphaned, until it was
// killed, and a C target that reads glibc's chunk headers
// (test/fixtures/old-heap-ends.c) read ASan's memory instead and crashed;
// a target on glibc's malloc is also what attach(pid) is for.
export function foreignEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const inherited = process.env.LD_PRELOAD;
  const kept: Record<string, string> = {};
  for (const [key, value] of Object.entries(env)) {
    if (value !== undefined && !(key === 'LD_PRELOAD' && value === inherited)) kept[key] = value;
  }
  return kept;
}
