// The package's entry (package.json `main`): index.ts's API as plain data
// properties. Its re-exports compile to one getter each on `exports`, which
// ran on every `h.name` lookup in CommonJS: about 10 ns a call, as much as
// programBreak() took beyond koffi's call of sbrk. This exact form,
// `module.exports = { ...require() }`, is one Node's ESM loader reads as
// re-exporting every name, so named imports still work.
export = { ...(require('./index') as typeof import('./index')) };
