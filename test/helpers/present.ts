// Tests import lib/ modules directly, below the entry points that load the
// views; this loads them as lib/index.ts does.
import '../../lib/present';
