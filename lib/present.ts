// Connects the records to the views that draw them: loaded once by every
// entry point (index, cli, report), it fills each record type's presenter
// slot. Records never import views; this is the one place that knows both.
import { allocationViews } from './allocation';
import { allocatorViews } from './allocator/results';
import { chunkHeaderViews } from './chunk';
import { doctorViews } from './doctor/index';
import { snapshotViews } from './heap-snapshot/index';
import { resultViews } from './experiments/result';
import { PRESENTATIONS } from './experiments/presentations';
import { mallocInfoViews } from './malloc-info';
import type { Presentation } from './presentation';
import { regionViews } from './maps';
import { allocatorStateViews } from './views/allocator';
import { installCharts, resultSVG } from './views/charts';
import { walkSVG } from './views/charts/walk';
import { doctorDocumentViews } from './views/doctor';
import { snapshotDocumentViews } from './views/snapshot';
import { diffDocumentViews } from './views/snapshot-diff';
import { resultHTML } from './views/html';
import { inspectAllocation, inspectArena, inspectChunkHeader, inspectMallocInfo, inspectRegion, inspectResult } from './views/inspect';
import { allocationBundle, mimeBundle, regionsBundle } from './views/jupyter';
import { resultMarkdown } from './views/markdown';
import { installTables } from './views/table';
import { installTerminalCharts } from './views/terminal';
import { inspectWalk, walkBundle, walkHTML } from './views/walk';
import { visViews } from './views/vis';
import { walkViews } from './walk/index';

/** Each experiment's own `key`, by name, for those that have one. */
function own<K extends keyof Presentation>(key: K): Record<string, NonNullable<Presentation[K]>> {
  return Object.fromEntries(Object.entries(PRESENTATIONS).flatMap(([name, p]) => (p[key] === undefined ? [] : [[name, p[key]]])));
}

installTables(own('table'));
installCharts(own('chart'));
installTerminalCharts(own('terminalChart'));
allocationViews.install({ inspect: inspectAllocation, bundle: allocationBundle });
chunkHeaderViews.install({ inspect: inspectChunkHeader });
regionViews.install({ inspect: inspectRegion, bundle: regionsBundle });
mallocInfoViews.install({ inspect: inspectMallocInfo, inspectArena });
allocatorViews.install({ ...allocatorStateViews, vis: visViews });
doctorViews.install(doctorDocumentViews);
snapshotViews.install({ snapshot: snapshotDocumentViews, diff: diffDocumentViews });
walkViews.install({ svg: walkSVG, html: walkHTML, inspect: inspectWalk, bundle: walkBundle });
resultViews.install({
  markdown: (result) => resultMarkdown(result),
  html: (result) => resultHTML(result),
  svg: resultSVG,
  inspect: inspectResult,
  bundle: mimeBundle,
});
