/**
 * The import rule of src/: layers in the order of the data path, each
 * importing only from the layers before it (and itself), and no circle.
 * `npm test` runs it (npm run lint:imports).
 *
 *   model     what a drop is: event layout, records, reasons, symbols, hints, noise rules
 *   host      what this machine says: namespaces, interfaces, pods, counters
 *   capture   the tracer: the addon's typed seam, its config, the capture run
 *   formats   bytes in and out: trace lines, recordings, pcapng, dropwatch logs
 *   analysis  what the drops mean: aggregation, reports, diagnosis, metrics
 *   views     what a person sees: the live screen, plain lines
 *   cli       commands: options, consumers, printing
 */
const LAYERS = ['model', 'host', 'capture', 'formats', 'analysis', 'views', 'cli'];

const upward = LAYERS.slice(0, -1).map((layer, i) => ({
  name: `${layer}-imports-upward`,
  comment: `src/${layer} may import only from ${LAYERS.slice(0, i + 1).join(', ')}`,
  severity: 'error',
  from: { path: `^src/${layer}/`, pathNot: '\\.test\\.ts$' },
  to: { path: `^src/(${LAYERS.slice(i + 1).join('|')})/` },
}));

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      from: { path: '^src/', pathNot: '\\.test\\.ts$' },
      to: { circular: true },
    },
    {
      name: 'in-a-layer',
      comment: `every module of src/ lives in one of the layers: ${LAYERS.join(', ')}`,
      severity: 'error',
      from: { path: '^src/', pathNot: `^src/(${LAYERS.join('|')})/` },
      to: {},
    },
    {
      name: 'in-a-layer-even-alone',
      comment: 'the same for a module that imports nothing (the schema caps the count at 100: any module outside the layers)',
      severity: 'error',
      module: { path: '^src/', pathNot: `^src/(${LAYERS.join('|')})/`, numberOfDependentsLessThan: 100 },
      from: {},
    },
    ...upward,
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '\\.test\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
