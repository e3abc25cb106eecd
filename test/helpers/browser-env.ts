// The environment a test's chromium is launched with: this process's, but
// the sanitizer run's preloaded ASan (scripts/sanitize.sh). The browser runs
// none of heapscope's code, and under that preload chromium spun at full CPU,
// orphaned, until it was killed.
export function browserEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) if (key !== 'LD_PRELOAD' && value !== undefined) env[key] = value;
  return env;
}
