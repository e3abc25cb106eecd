// The kernel-calls experiment in a terminal: each call and what the kernel saw.
import { signedBytes } from '../../format';
import { TerminalView } from '../../presentation';
import { firstRows, RIGHT, terminalTable } from '../../table-spec';
import { KernelCallRow } from './index';

export const kernelCallsTerminal: TerminalView<KernelCallRow> = {
  table: (_, chosen) => terminalTable({
    title: 'Each call, and what the kernel saw',
    columns: [
      { head: 'call', cell: (r) => (r.op === 'malloc' ? `malloc(${r.size})` : `free(malloc(${r.size}))`) },
      { head: 'chunk', cell: (r) => String(r.chunkSize), ...RIGHT },
      { head: 'M', cell: (r) => (r.mmapped ? 'M' : '') },
      { head: 'break moved', cell: (r) => signedBytes(r.breakDelta), ...RIGHT },
      { head: 'top before → after', cell: (r) => `${r.topBefore} → ${r.topAfter}`, ...RIGHT },
      { head: 'verdict', cell: (r) => r.verdict, wrap: true, colour: (r) => (r.verdict === 'served from memory it held' ? 'green' : 'yellow') },
    ],
    ...firstRows(chosen),
  }),
};
